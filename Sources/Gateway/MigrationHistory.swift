import ControlPlane
import Engine
import Foundation
import PacketIO

/// `GET /v1/migrations` without `id`: the running migrations and the recent finished ones
/// (each engine keeps its last 1000 reports; the listing shows at most `limit`, 256 unless
/// asked), what `tsmp migrations` prints.
public struct MigrationListing: Codable, Sendable, Equatable {
    public var migrations: [MigrationReport]
    /// Running ones among them (not finished).
    public var running: Int
    public init(migrations: [MigrationReport]) {
        self.migrations = migrations
        running = migrations.filter { !$0.isFinished }.count
    }
    public static let defaultLimit = 256
    public static let maximumLimit = 1000
}

/// An engine event as the control endpoint serves it: with the wall-clock time (Unix
/// seconds) it happened, from the engine's monotonic clock.
public struct EventRecord: Codable, Sendable, Equatable {
    public var time: Double
    public var shard: Int
    public var event: JournalEvent
    public init(time: Double, shard: Int, event: JournalEvent) { self.time = time; self.shard = shard; self.event = event }
}

/// `GET /v1/events?after=CURSOR&wait=SECONDS`: a long poll. Answers as soon as there are
/// events after `cursor` (or when `wait` is up, with none); the client asks again after the
/// `cursor` it got. Without `after`: no events, just the cursor of now (follow from here).
public struct EventBatch: Codable, Sendable, Equatable {
    public var events: [EventRecord]
    /// Where to continue: the last sequence number seen per shard, comma-separated.
    public var cursor: String
    /// Events the proxy no longer held (the reader fell behind its journal).
    public var lost: UInt64
    public init(events: [EventRecord], cursor: String, lost: UInt64) { self.events = events; self.cursor = cursor; self.lost = lost }
}

/// A cursor of `EventBatch`: one sequence number per shard.
public enum EventCursor {
    /// Parses "N,N,..."; nil when malformed or not one number per shard.
    public static func parse(_ text: String, shards: Int) -> [UInt64]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == shards else { return nil }
        var out: [UInt64] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 20, p.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt64(p) else { return nil }
            out.append(v)
        }
        return out
    }

    public static func format(_ seqs: [UInt64]) -> String { seqs.map(String.init).joined(separator: ",") }

    /// Unix seconds of an engine instant, from the two clocks read now.
    public static func wallClock(_ nanoseconds: UInt64, monotonicNow: UInt64, realNow: Double) -> Double {
        realNow - (Double(monotonicNow) - Double(nanoseconds)) / 1e9
    }
}

extension ControlAPI {
    /// `GET /v1/events` (see `EventBatch`). `wait` is at most 30 seconds (10 unless given).
    static func events(_ request: HTTPEndpoint.Request, engine: any EngineAccess, encoder: JSONEncoder) async -> HTTPEndpoint.Response {
        let shards = await engine.eventCursorNow()
        let wait: Double
        if let w = request.query["wait"] {
            guard let v = Double(w), v >= 0, v <= 30 else { return .error(.badRequest, "wait must be within [0, 30] seconds, not \"\(w)\"") }
            wait = v
        } else {
            wait = 10
        }
        guard let after = request.query["after"] else {
            return json(encoder, EventBatch(events: [], cursor: EventCursor.format(shards), lost: 0))
        }
        let cursor: [UInt64]
        if after == "start" {
            cursor = Array(repeating: 0, count: shards.count)
        } else if let c = EventCursor.parse(after, shards: shards.count) {
            cursor = c
        } else {
            return .error(.badRequest, "after must be \"start\" or the cursor of the last answer (\(shards.count) numbers), not \"\(after)\"")
        }
        let until = Date().addingTimeInterval(wait)
        while true {
            let batch = await engine.events(after: cursor)
            if !batch.events.isEmpty || batch.lost > 0 || Date() >= until { return json(encoder, batch) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    static func migrationListing(_ request: HTTPEndpoint.Request, engine: any EngineAccess, encoder: JSONEncoder) async -> HTTPEndpoint.Response {
        var limit = MigrationListing.defaultLimit
        if let l = request.query["limit"] {
            guard let v = Int(l), v >= 0, v <= MigrationListing.maximumLimit else {
                return .error(.badRequest, "limit must be within [0, \(MigrationListing.maximumLimit)], not \"\(l)\"")
            }
            limit = v
        }
        return json(encoder, MigrationListing(migrations: await engine.migrationListing(limit: limit)))
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

extension ShardedDataPlane {
    public func migrationListing(limit: Int) async -> [MigrationReport] {
        var all: [MigrationReport] = []
        for p in planes {
            all += await p.perform { $0.migrationListing(limit: limit, now: Syscall.monotonicNow()) }
        }
        // The most recent `limit` finished ones over all shards, and every running one.
        let finished = all.filter(\.isFinished).sorted { $0.id < $1.id }.suffix(limit)
        return (all.filter { !$0.isFinished } + finished).sorted { $0.id < $1.id }
    }

    public func eventCursorNow() async -> [UInt64] {
        var out: [UInt64] = []
        for p in planes { out.append(await p.perform { $0.lastEventSeq }) }
        return out
    }

    public func events(after cursor: [UInt64]) async -> EventBatch {
        var records: [EventRecord] = []
        var next = cursor
        var lost: UInt64 = 0
        let mono = Syscall.monotonicNow().nanoseconds, real = Date().timeIntervalSince1970
        for (i, p) in planes.enumerated() where i < cursor.count {
            let after = cursor[i]
            let (events, l, last) = await p.perform { $0.events(after: after) }
            records += events.map { EventRecord(time: EventCursor.wallClock($0.nanoseconds, monotonicNow: mono, realNow: real), shard: i, event: $0) }
            next[i] = last
            lost &+= l
        }
        return EventBatch(events: records.sorted { $0.time < $1.time }, cursor: EventCursor.format(next), lost: lost)
    }

    public func timeline(_ id: MigrationID) async -> MigrationTimeline? {
        await planes[layout.shard(ofID: id.rawValue) % planes.count].perform { $0.migrationTimeline(id) }
    }

    public func migrationStats() async -> (stats: MigrationStats, flowsLimit: Int) {
        var parts: [MigrationStats] = []
        var limit = 0
        for p in planes {
            let (s, l) = await p.perform { ($0.migrationStats, $0.config.limits.maxFlows) }
            parts.append(s)
            limit += l
        }
        return (MigrationStats.sum(parts), limit)
    }
}
