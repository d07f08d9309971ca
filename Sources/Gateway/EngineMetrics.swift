import Engine
import Prometheus
import Telemetry

/// Prometheus metrics of the engine (`--metrics ADDR:PORT`, path /metrics). The engine keeps
/// plain counters on its own thread (no atomics per packet); each scrape takes a status copy
/// through the data plane and sets the registry's values from it.
public final class EngineMetrics: @unchecked Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let packetsIn, bytesIn, packetsForwarded, bytesForwarded, passedThrough, generated: Counter
    private let superSegmentsIn, segmentsCoalesced: Counter
    private let flowsCreated, flowsClosed, flowsExpired: Counter
    private let kernelPathEntered, kernelPathLeft, stateProbes: Counter
    private let datagramsReassembled, fragmentsReassembled: Counter
    private let kernelPathFlows: Gauge
    private let drops: [DropReason: Counter]
    private let flows, natInUse, natCapacity, inFlightBytes: Gauge
    private let writeErrors: Counter
    private let buildInfo: Gauge

    public init() {
        packetsIn = registry.makeCounter(descriptor: Self.name("packets_in", "total", "Packets read by the engine"))
        bytesIn = registry.makeCounter(descriptor: Self.name("bytes_in", "total", "Bytes read by the engine"))
        packetsForwarded = registry.makeCounter(descriptor: Self.name("packets_forwarded", "total", "Packets rewritten and forwarded"))
        bytesForwarded = registry.makeCounter(descriptor: Self.name("bytes_forwarded", "total", "Bytes rewritten and forwarded"))
        passedThrough = registry.makeCounter(descriptor: Self.name("packets_passed_through", "total", "Packets of unmanaged flows forwarded unchanged"))
        generated = registry.makeCounter(descriptor: Self.name("packets_generated", "total", "Packets the engine made itself (RSTs, ACKs)"))
        superSegmentsIn = registry.makeCounter(descriptor: Self.name("super_segments_in", "total", "Super-segments read (TUN offloads)"))
        segmentsCoalesced = registry.makeCounter(descriptor: Self.name("segments_coalesced", "total", "Segments merged into another before a write"))
        flowsCreated = registry.makeCounter(descriptor: Self.name("flows_created", "total", "Managed flows created"))
        flowsClosed = registry.makeCounter(descriptor: Self.name("flows_closed", "total", "Managed flows removed after FIN/RST"))
        flowsExpired = registry.makeCounter(descriptor: Self.name("flows_expired", "total", "Managed flows removed after an idle timeout"))
        kernelPathEntered = registry.makeCounter(descriptor: Self.name("kernel_path_entered", "total", "Flows handed to the kernel's forwarding"))
        kernelPathLeft = registry.makeCounter(descriptor: Self.name("kernel_path_left", "total", "Flows taken back from the kernel's forwarding"))
        stateProbes = registry.makeCounter(descriptor: Self.name("state_probes", "total", "ACKs sent to learn a flow's state back from its ends"))
        datagramsReassembled = registry.makeCounter(descriptor: Self.name("ipv4_datagrams_reassembled", "total", "IPv4 datagrams the engine put back together from fragments"))
        fragmentsReassembled = registry.makeCounter(descriptor: Self.name("ipv4_fragments_reassembled", "total", "IPv4 fragments that went into reassembled datagrams"))
        kernelPathFlows = registry.makeGauge(descriptor: Self.name("kernel_path_flows", "", "Flows the kernel forwards now"))
        var d: [DropReason: Counter] = [:]
        for r in DropReason.allCases {
            d[r] = registry.makeCounter(descriptor: Self.name("packets_dropped", "total", "Packets dropped by the engine, by reason"), labels: [("reason", r.rawValue)])
        }
        drops = d
        flows = registry.makeGauge(descriptor: Self.name("flows", "", "Managed flows in the table"))
        natInUse = registry.makeGauge(descriptor: Self.name("nat_ports_in_use", "", "NAT ports held by flows"))
        natCapacity = registry.makeGauge(descriptor: Self.name("nat_ports_capacity", "", "NAT ports in the range"))
        inFlightBytes = registry.makeGauge(descriptor: Self.name("in_flight_copy_bytes", "", "Bytes held by in-flight copies"))
        writeErrors = registry.makeCounter(descriptor: Self.name("device_write_errors", "total", "Packets the output device refused"))
        // The usual `_build_info` idiom: a constant 1 whose labels say what is running.
        buildInfo = registry.makeGauge(descriptor: Self.name("build_info", "", "The running tsmp: version and git commit (value 1)"),
                                       labels: [("version", BuildInfo.version), ("commit", BuildInfo.commit)])
        buildInfo.set(Double(1))
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tsmp", metricName: metric, unitName: unit, helpText: help)
    }

    /// Sets every value from `status` and renders the exposition text.
    public func render(_ status: EngineStatus, deviceWriteErrors: Int) -> [UInt8] {
        func set(_ c: Counter, _ v: UInt64) { c.reset(); c.increment(by: Int64(clamping: v)) }
        set(packetsIn, status.packetsIn); set(bytesIn, status.bytesIn)
        set(packetsForwarded, status.packetsForwarded); set(bytesForwarded, status.bytesForwarded)
        set(passedThrough, status.packetsPassedThrough); set(generated, status.packetsGenerated)
        set(superSegmentsIn, status.superSegmentsIn); set(segmentsCoalesced, status.segmentsCoalesced)
        set(flowsCreated, status.flowsCreated); set(flowsClosed, status.flowsClosed); set(flowsExpired, status.flowsExpired)
        set(kernelPathEntered, status.kernelPathEntered); set(kernelPathLeft, status.kernelPathLeft)
        set(stateProbes, status.stateProbes)
        set(datagramsReassembled, status.datagramsReassembled); set(fragmentsReassembled, status.fragmentsReassembled)
        kernelPathFlows.set(Double(status.kernelPathFlows))
        for (r, c) in drops { set(c, status.drops[r.rawValue] ?? 0) }
        flows.set(Double(status.flows))
        natInUse.set(Double(status.natPortsInUse))
        natCapacity.set(Double(status.natPortsCapacity))
        inFlightBytes.set(Double(status.inFlightStorageBytes))
        set(writeErrors, UInt64(max(0, deviceWriteErrors)))
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }
}
