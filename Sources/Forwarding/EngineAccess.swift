import Engine
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
    /// The operator's views (`MigrationHistory.swift`; defaults there answer nothing): running and
    /// recent migrations, the event journal's cursor of now and its events after a cursor, the
    /// finished migrations' statistics with the flow-table limit.
    func migrationListing(limit: Int) async -> [MigrationReport]
    func eventCursorNow() async -> [UInt64]
    func events(after cursor: [UInt64]) async -> EventBatch
    func migrationStats() async -> (stats: MigrationStats, flowsLimit: Int)
    /// A running or recently finished migration's packets (`MigrationSVG`).
    func timeline(_ id: MigrationID) async -> MigrationTimeline?
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
