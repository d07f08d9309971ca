/// A copy of the engine's counters and gauges, safe to hand to another thread (metrics,
/// `tsmp flows --json`).
public struct EngineStatus: Sendable, Codable, Equatable {
    public var packetsIn: UInt64
    public var bytesIn: UInt64
    public var packetsForwarded: UInt64
    public var bytesForwarded: UInt64
    public var packetsPassedThrough: UInt64
    public var packetsGenerated: UInt64
    /// Super-segments read (offloads), and segments merged into one write (coalescing).
    public var superSegmentsIn: UInt64
    public var segmentsCoalesced: UInt64
    public var flowsCreated: UInt64
    public var flowsClosed: UInt64
    public var flowsExpired: UInt64
    public var flows: Int
    public var natPortsInUse: Int
    public var natPortsCapacity: Int
    public var inFlightStorageBytes: Int
    /// Drops by reason (only reasons seen at least once).
    public var drops: [String: UInt64]
}

extension SpliceEngine {
    public func status() -> EngineStatus {
        var drops: [String: UInt64] = [:]
        for r in DropReason.allCases where counters[r] > 0 { drops[r.rawValue] = counters[r] }
        return EngineStatus(
            packetsIn: counters.packetsIn, bytesIn: counters.bytesIn,
            packetsForwarded: counters.packetsForwarded, bytesForwarded: counters.bytesForwarded,
            packetsPassedThrough: counters.packetsPassedThrough, packetsGenerated: counters.packetsGenerated,
            superSegmentsIn: counters.superSegmentsIn, segmentsCoalesced: counters.segmentsCoalesced,
            flowsCreated: counters.flowsCreated, flowsClosed: counters.flowsClosed, flowsExpired: counters.flowsExpired,
            flows: flowCount, natPortsInUse: natPortsInUse, natPortsCapacity: natPorts.capacity,
            inFlightStorageBytes: inFlightStorageBytes, drops: drops)
    }
}
