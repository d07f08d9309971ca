import Engine
import Media
import PacketIO

/// What the control endpoints (the local `--control` API and the device-facing API) ask of
/// the data plane. They go through this and never touch a `SpliceEngine` themselves, so how
/// the engine is run (one data-plane thread per queue, `ShardedDataPlane`, with one queue or
/// several) stays the data plane's affair.
public protocol EngineAccess: Sendable {
    /// Every managed flow and the engine's counters.
    func listing() async -> FlowListing
    func engineStatus() async -> EngineStatus
    /// Starts one migration per flow toward `target`; one refusal doesn't stop the others.
    func startMigrations(_ flows: [FlowID], to target: MigrationTarget, deadline: Duration) async -> [MigrationStartResult]
    /// Names the source port a migration's new device will connect from (the MTR's answer).
    func bindMigrationSourcePort(_ port: UInt16, to migration: MigrationID) async -> Result<Void, MigrationRefusal>
    /// Reports of running or finished migrations; unknown ids are left out.
    func reports(_ ids: [MigrationID]) async -> [MigrationReport]
    /// The operator's views (defaults below answer nothing; `ShardedDataPlane+History.swift`): running and
    /// recent migrations, the event journal's cursor of now and its events after a cursor, the
    /// finished migrations' statistics with the flow-table limit.
    func migrationListing(limit: Int) async -> [MigrationReport]
    func eventCursorNow() async -> [UInt64]
    func events(after cursor: [UInt64]) async -> EventBatch
    func migrationStats() async -> (stats: MigrationStats, flowsLimit: Int)
    /// A running or recently finished migration's packets (`MigrationSVG`).
    func timeline(_ id: MigrationID) async -> MigrationTimeline?
}

/// `GET /v1/flows`: every managed flow and the engine's status (`tsmp flows`).
public struct FlowListing: Codable, Sendable {
    public var flows: [FlowSummary]
    public var status: EngineStatus
    /// The media relay's sessions (`--intercept rtsp/PORT`); absent without one.
    public var media: [MediaSessionSummary]?
    public init(flows: [FlowSummary], status: EngineStatus) { self.flows = flows; self.status = status }
}

/// One flow's answer to a migration request: the migration's id, or why it was refused (one
/// refusal doesn't stop the others). The one result type of both ways to ask: the local
/// control API (`POST /v1/migrations`, an array of these) and the device API (`POST /v1/mfr`,
/// `MigrationFromAnswer.results`); JSON `{"flow": N, "migration": N, "error": "..."}`, the
/// absent ones left out.
public struct MigrationStartResult: Codable, Sendable, Equatable {
    public var flow: FlowID
    public var migration: MigrationID?
    public var error: String?
    public init(flow: FlowID, migration: MigrationID?, error: String?) {
        self.flow = flow; self.migration = migration; self.error = error
    }
}

/// What the operator's views ask of the data plane; the defaults answer "nothing" for an
/// `EngineAccess` that keeps no history (tests' stand-ins).
extension EngineAccess {
    public func migrationListing(limit: Int) async -> [MigrationReport] { [] }
    public func eventCursorNow() async -> [UInt64] { [0] }
    public func events(after cursor: [UInt64]) async -> EventBatch { EventBatch(events: [], cursor: EventCursor.format(cursor), lost: 0) }
    public func migrationStats() async -> (stats: MigrationStats, flowsLimit: Int) { (MigrationStats(), 0) }
    public func timeline(_ id: MigrationID) async -> MigrationTimeline? { nil }
}

/// What one shard's loop answers for `ShardedDataPlane`, the only `EngineAccess` (which merges
/// the shards' answers and starts migrations where the flow's id says).
extension DataPlane {
    func listing() async -> FlowListing {
        await perform { [self] engine in
            FlowListing(flows: engine.flowSummaries(now: Syscall.monotonicNow()), status: currentStatus(engine))
        }
    }

    func engineStatus() async -> EngineStatus {
        await perform { [self] in currentStatus($0) }
    }

    func reports(_ ids: [MigrationID]) async -> [MigrationReport] {
        await perform { engine in
            let now = Syscall.monotonicNow()
            return ids.compactMap { engine.migrationReport($0, now: now) }
        }
    }
}
