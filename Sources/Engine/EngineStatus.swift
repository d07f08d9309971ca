/// A copy of the engine's counters and gauges, safe to hand to another thread (metrics,
/// `tsmp flows --json`).
public struct EngineStatus: Sendable, Codable, Equatable {
    public var packetsIn: UInt64
    public var bytesIn: UInt64
    public var packetsForwarded: UInt64
    public var bytesForwarded: UInt64
    public var packetsPassedThrough: UInt64
    public var packetsGenerated: UInt64
    /// Super-segments read (offloads), and segments merged into one write (coalescing: the
    /// TUN device does it, the data plane fills this in from the device; 0 from the engine).
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
    /// The kernel path: flows it forwards now, flows handed over and taken back, state probes.
    public var kernelPathFlows = 0
    public var kernelPathEntered: UInt64 = 0
    public var kernelPathLeft: UInt64 = 0
    public var stateProbes: UInt64 = 0
    /// ICMP errors translated to the other end of a managed flow, and absorbed by the proxy.
    public var icmpErrorsTranslated: UInt64 = 0
    public var icmpErrorsAbsorbed: UInt64 = 0
    /// IPv4 datagrams put back together from fragments, and the fragments that went into them.
    public var datagramsReassembled: UInt64 = 0
    public var fragmentsReassembled: UInt64 = 0
}

extension SpliceEngine {
    public func status() -> EngineStatus {
        var drops: [String: UInt64] = [:]
        for r in DropReason.allCases where counters[r] > 0 { drops[r.rawValue] = counters[r] }
        return EngineStatus(
            packetsIn: counters.packetsIn, bytesIn: counters.bytesIn,
            packetsForwarded: counters.packetsForwarded, bytesForwarded: counters.bytesForwarded,
            packetsPassedThrough: counters.packetsPassedThrough, packetsGenerated: counters.packetsGenerated,
            superSegmentsIn: counters.superSegmentsIn, segmentsCoalesced: 0,
            flowsCreated: counters.flowsCreated, flowsClosed: counters.flowsClosed, flowsExpired: counters.flowsExpired,
            flows: flowCount, natPortsInUse: natPortsInUse, natPortsCapacity: natPorts.capacity,
            inFlightStorageBytes: inFlightStorageBytes, drops: drops,
            kernelPathFlows: kernelPathFlowCount, kernelPathEntered: counters.kernelPathEntered,
            kernelPathLeft: counters.kernelPathLeft, stateProbes: counters.stateProbes,
            icmpErrorsTranslated: counters.icmpErrorsTranslated, icmpErrorsAbsorbed: counters.icmpErrorsAbsorbed,
            datagramsReassembled: counters.datagramsReassembled, fragmentsReassembled: counters.fragmentsReassembled)
    }
}

extension EngineStatus {
    /// The sum of several engines' statuses (the shards of a multi-queue data plane).
    public static func sum(_ parts: [EngineStatus]) -> EngineStatus {
        var t = EngineStatus(packetsIn: 0, bytesIn: 0, packetsForwarded: 0, bytesForwarded: 0, packetsPassedThrough: 0,
                             packetsGenerated: 0, superSegmentsIn: 0, segmentsCoalesced: 0, flowsCreated: 0,
                             flowsClosed: 0, flowsExpired: 0, flows: 0, natPortsInUse: 0, natPortsCapacity: 0,
                             inFlightStorageBytes: 0, drops: [:])
        for p in parts {
            t.packetsIn &+= p.packetsIn; t.bytesIn &+= p.bytesIn
            t.packetsForwarded &+= p.packetsForwarded; t.bytesForwarded &+= p.bytesForwarded
            t.packetsPassedThrough &+= p.packetsPassedThrough; t.packetsGenerated &+= p.packetsGenerated
            t.superSegmentsIn &+= p.superSegmentsIn; t.segmentsCoalesced &+= p.segmentsCoalesced
            t.flowsCreated &+= p.flowsCreated; t.flowsClosed &+= p.flowsClosed; t.flowsExpired &+= p.flowsExpired
            t.flows += p.flows; t.natPortsInUse += p.natPortsInUse; t.natPortsCapacity += p.natPortsCapacity
            t.inFlightStorageBytes += p.inFlightStorageBytes
            t.drops.merge(p.drops, uniquingKeysWith: &+)
            t.kernelPathFlows += p.kernelPathFlows; t.kernelPathEntered &+= p.kernelPathEntered
            t.kernelPathLeft &+= p.kernelPathLeft; t.stateProbes &+= p.stateProbes
            t.icmpErrorsTranslated &+= p.icmpErrorsTranslated; t.icmpErrorsAbsorbed &+= p.icmpErrorsAbsorbed
            t.datagramsReassembled &+= p.datagramsReassembled; t.fragmentsReassembled &+= p.fragmentsReassembled
        }
        return t
    }
}
