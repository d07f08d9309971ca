import Engine

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
