import Engine
import Foundation
import PacketIO

/// The operator's views (`EngineAccess`'s migration listing, event journal, statistics and
/// timelines), merged over the shards: each shard's engine is asked on its own loop thread.
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
