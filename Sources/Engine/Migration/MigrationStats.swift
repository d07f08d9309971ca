/// Counts of observations in fixed buckets, the shape of a Prometheus histogram (the engine
/// fills it without a metrics library: sans-IO, no locks; the gateway renders it).
public struct HistogramCounts: Sendable, Codable, Equatable {
    /// Upper bounds, increasing; an implicit last bucket holds everything above (+Inf).
    public let bounds: [Double]
    /// Observations per bucket (not cumulative): `bounds.count + 1` entries.
    public private(set) var counts: [UInt64]
    public private(set) var sum: Double = 0
    public var count: UInt64 { counts.reduce(0, &+) }

    public init(bounds: [Double]) {
        self.bounds = bounds.sorted()
        counts = Array(repeating: 0, count: bounds.count + 1)
    }

    public mutating func observe(_ value: Double) {
        guard value.isFinite else { return }
        let i = bounds.firstIndex { value <= $0 } ?? bounds.count
        counts[i] &+= 1
        sum += value
    }

    /// Counts of `le` buckets as Prometheus wants them: cumulative, ending with +Inf.
    public var cumulative: [(le: Double, count: UInt64)] {
        var running: UInt64 = 0
        return counts.enumerated().map { i, c in
            running &+= c
            return (i < bounds.count ? bounds[i] : .infinity, running)
        }
    }

    /// Adds another histogram with the same bounds (the shards of a multi-queue data plane);
    /// different bounds are a programming error and leave `self` unchanged.
    public mutating func merge(_ other: HistogramCounts) {
        guard other.bounds == bounds else { return }
        for i in counts.indices { counts[i] &+= other.counts[i] }
        sum += other.sum
    }
}

/// What finished migrations amount to (the `tsmp_migration*` metrics): how many ended how,
/// and how long they took, how long the server was paused, how much the proxy cached.
public struct MigrationStats: Sendable, Codable, Equatable {
    /// Finished migrations by final phase (`spliced`, `rolled-back`, `aborted`).
    public var results: [String: UInt64] = [:]
    /// Seconds from the request to the end.
    public var duration = HistogramCounts(bounds: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
    /// Seconds the server saw a zero window: from `paused` to the end (the splice reopens it;
    /// a rollback gives it back to the old device).
    public var stall = HistogramCounts(bounds: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
    /// Bytes the proxy delivered from its copy and cache.
    public var cacheBytes = HistogramCounts(bounds: [0, 1024, 4096, 16384, 65536, 262_144, 1_048_576, 4_194_304, 16_777_216])

    public init() {}

    /// Counts a finished migration's report (unfinished ones are ignored).
    public mutating func record(_ r: MigrationReport) {
        guard r.isFinished, let end = r.phases.last?.seconds else { return }
        results[r.phase.rawValue, default: 0] &+= 1
        duration.observe(end)
        if let paused = r.phases.first(where: { $0.phase == .paused })?.seconds { stall.observe(max(0, end - paused)) }
        cacheBytes.observe(Double(r.bytesCached))
    }

    public static func sum(_ parts: [MigrationStats]) -> MigrationStats {
        var t = MigrationStats()
        for p in parts {
            t.results.merge(p.results, uniquingKeysWith: &+)
            t.duration.merge(p.duration); t.stall.merge(p.stall); t.cacheBytes.merge(p.cacheBytes)
        }
        return t
    }
}
