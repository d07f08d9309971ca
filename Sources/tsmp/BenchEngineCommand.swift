#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import CShims
import Engine
import Foundation
import Logging
import PacketIO
import Wire

/// `tsmp bench-engine`: the engine's cost per packet and memory per flow, offline.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-engine",
        abstract: "Measure the splice engine offline: ns per packet and memory per flow.",
        discussion: """
        Per packet: an established flow's data segments and ACKs (or the packets of --pcap) \
        are copied into a batch and run through the engine, again and again; the time of the \
        copy alone is measured in the same run and reported beside it. Times are the thread's \
        CPU time (CLOCK_THREAD_CPUTIME_ID), so a busy machine inflates them less. Per flow: \
        --flows handshakes are run and the heap growth (mallinfo2) divided by the flow count; \
        no payload is held (the in-flight copy is empty). The same again at --large-flows \
        (0: skip) for the table's memory at a million flows; one engine holds at most \
        64,000 flows (one NAT address's ports), so flows are spread over several engines.

        Examples:
          tsmp bench-engine
          tsmp bench-engine --packets 2000000 --flows 100000
          tsmp bench-engine --family ipv6 --large-flows 0     # the same packets over IPv6 (NAT66)
          tsmp bench-engine --pcap Tests/EngineTests/Fixtures/iperf3.pcap --nat 10.2.0.1 --intercept tcp/5201
        """)

    @Option(help: "Packets to process for the per-packet figure.")
    var packets = 1_000_000

    @Option(help: "Flows to create for the memory figure.")
    var flows = 100_000

    @Option(help: "Runs of the per-packet measurement; the fastest and the median run are reported (a shared machine only adds time).")
    var rounds = 7

    @Option(help: "Flows for the large-table memory figure (0: skip).")
    var largeFlows = 1_000_000

    @Option(help: "Address family of the synthetic packets and flows: ipv4 or ipv6.")
    var family: FamilyArgument = FamilyArgument(family: .ipv4)

    @Option(help: "Replay the packets of this capture instead of synthetic ones.")
    var pcap: String?

    @Option(help: "NAT address (with --pcap).")
    var nat: IPv4Address = IPv4Address(10, 2, 0, 1)

    @Option(help: "Intercepted ports (with --pcap).")
    var intercept: [InterceptSpec] = []

    @Flag(help: "Print JSON.")
    var json = false

    struct Result: Codable {
        var packets: Int
        var nsPerPacketEngineAndCopy: Double
        var nsPerPacketCopyOnly: Double
        var nsPerPacketEngine: Double
        /// The fastest run's engine time: interference (other tenants, frequency) only adds.
        var nsPerPacketEngineBest: Double
        var flows: Int
        var bytesPerFlow: Double
        var largeFlows: Int
        var bytesPerFlowLarge: Double?
        var tableBytesLarge: Double?
        var flowRecordBytes: Int
        var source: String
    }

    func run() throws {
        let (templates, config) = try workload()
        // The median round by engine time (each round is copy alone, then copy + engine).
        let runs = (0..<max(1, rounds)).map { _ in measurePackets(templates, config: config) }
            .sorted { ($0.total - $0.copy) < ($1.total - $1.copy) }
        let perPacket = runs[runs.count / 2]
        let perFlow = measureFlows(flows)
        let large = largeFlows > 0 ? measureFlows(largeFlows) : nil
        let result = Result(packets: packets, nsPerPacketEngineAndCopy: perPacket.total, nsPerPacketCopyOnly: perPacket.copy,
                            nsPerPacketEngine: max(0, perPacket.total - perPacket.copy),
                            nsPerPacketEngineBest: max(0, runs[0].total - runs[0].copy), flows: flows,
                            bytesPerFlow: perFlow, largeFlows: largeFlows, bytesPerFlowLarge: large,
                            tableBytesLarge: large.map { $0 * Double(largeFlows) },
                            flowRecordBytes: SpliceEngine.flowRecordBytes,
                            source: pcap ?? "synthetic 1448-byte segments and ACKs over \(family.family == .ipv4 ? "IPv4" : "IPv6")")
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(result), as: UTF8.self))
        } else {
            print("engine: \(String(format: "%.1f", result.nsPerPacketEngine)) ns/packet "
                  + "(\(String(format: "%.1f", result.nsPerPacketEngineAndCopy)) with the batch copy, copy alone "
                  + "\(String(format: "%.1f", result.nsPerPacketCopyOnly))) over \(packets) packets of \(result.source), "
                  + "median of \(max(1, rounds)) runs; fastest run \(String(format: "%.1f", result.nsPerPacketEngineBest)) ns/packet")
            print("memory: \(String(format: "%.0f", result.bytesPerFlow)) bytes/flow at \(flows) flows (no payload held; "
                  + "flow record \(result.flowRecordBytes) bytes)")
            if let large = result.bytesPerFlowLarge, let total = result.tableBytesLarge {
                print("memory: \(String(format: "%.0f", large)) bytes/flow at \(largeFlows) flows: "
                      + "\(String(format: "%.1f", total / 1_048_576)) MiB for the flow tables")
            }
        }
    }

    /// Packets to replay, and the engine configuration they need. Handshake packets are run
    /// once to set the flow up; the rest are the steady state.
    private func workload() throws -> (steady: [[UInt8]], config: EngineConfig) {
        if let pcap {
            guard !intercept.isEmpty else { throw ValidationError("--pcap needs --intercept (the proxy's flags)") }
            let reader: PcapFileReader
            do { reader = try PcapFileReader(path: pcap) } catch { throw ValidationError("\(error)") }
            var out: [[UInt8]] = []
            let batch = PacketBatch(capacity: 64)
            while !reader.isExhausted {
                batch.removeAll()
                _ = try reader.read(into: batch)
                for i in 0..<batch.count where batch.directions[i] == .inbound { out.append(batch.bytes(i)) }
            }
            guard !out.isEmpty else { throw ValidationError("\(pcap) holds no packets to replay") }
            return (out, EngineConfig(nat: nat, intercepts: intercept.map(\.range)))
        }
        let (device, server, natEndpoint) = Self.ends(family.family)
        var steady: [[UInt8]] = []
        let payload = [UInt8](repeating: 0x5A, count: 1448)
        let ts: [TCPOption] = [.noOperation, .noOperation, .timestamp(value: 1, echoReply: 1)]
        var serverSeq = SeqNumber(5001)
        for _ in 0..<32 {
            steady.append(TCPPacketBuilder.bytes(TCPPacketSpec(source: server, destination: natEndpoint, seq: serverSeq,
                                                               ack: SeqNumber(1001), flags: [.ack, .psh], window: 500, options: ts), payload: payload))
            serverSeq += 1448
            steady.append(TCPPacketBuilder.bytes(TCPPacketSpec(source: device, destination: server, seq: SeqNumber(1001),
                                                               ack: serverSeq, flags: .ack, window: 3000, options: ts)))
        }
        return (steady, Self.config)
    }

    /// Both NAT addresses, so either family's flows are managed.
    static let config = EngineConfig(nat: IPv4Address(10, 2, 0, 1), nat6: IPv6Address("fd00:2::1"), intercepts: [PortRange(8080, 8080)])

    /// The device, the server and the NAT side of the synthetic flow, in `family`.
    static func ends(_ family: IPFamily) -> (device: IPEndpoint, server: IPEndpoint, nat: IPEndpoint) {
        let nat = EngineConfig.defaultNATPorts.lower
        switch family {
        case .ipv4:
            return (IPEndpoint(IPv4Address(10, 1, 0, 2), 40000), IPEndpoint(IPv4Address(10, 2, 0, 2), 8080),
                    IPEndpoint(IPv4Address(10, 2, 0, 1), nat))
        case .ipv6:
            return (IPEndpoint("[fd00:1::2]:40000")!, IPEndpoint("[fd00:2::2]:8080")!, IPEndpoint("[fd00:2::1]:\(nat)")!)
        }
    }

    private func handshake(_ engine: SpliceEngine, generated: PacketBatch) {
        let (device, server, natEndpoint) = Self.ends(family.family)
        for spec in [
            TCPPacketSpec(source: device, destination: server, seq: SeqNumber(1000), flags: .syn, window: 64240),
            TCPPacketSpec(source: server, destination: natEndpoint, seq: SeqNumber(5000), ack: SeqNumber(1001), flags: [.syn, .ack]),
            TCPPacketSpec(source: device, destination: server, seq: SeqNumber(1001), ack: SeqNumber(5001), flags: .ack),
        ] {
            var bytes = TCPPacketBuilder.bytes(spec)
            bytes.withUnsafeMutableBytes { _ = engine.process($0, now: Instant(nanoseconds: 1), generated: generated) }
        }
    }

    private func measurePackets(_ templates: [[UInt8]], config: EngineConfig) -> (total: Double, copy: Double) {
        var limits = config.limits
        limits.inFlightPerFlow = 0 // steady state: the copy would otherwise grow without ACK progress
        var cfg = config
        cfg.limits = limits
        let engine = SpliceEngine(config: cfg, logger: Logger(label: "bench"))
        let batch = PacketBatch(capacity: 64)
        let generated = PacketBatch(capacity: 128, maxPacket: 2048)
        if pcap == nil { handshake(engine, generated: generated) }
        func fill(_ start: Int) {
            batch.removeAll()
            for k in 0..<64 { templates[(start + k) % templates.count].withUnsafeBytes { _ = batch.append($0) } }
        }
        // Copy alone.
        var t0 = Syscall.threadCPUNow()
        var done = 0
        while done < packets { fill(done); done += 64 }
        let copy = Double(Syscall.threadCPUNow().nanoseconds - t0.nanoseconds) / Double(done)
        // Copy + engine.
        t0 = Syscall.threadCPUNow()
        done = 0
        while done < packets {
            fill(done)
            generated.removeAll()
            engine.process(batch, now: Instant(nanoseconds: 2), generated: generated)
            done += 64
        }
        let total = Double(Syscall.threadCPUNow().nanoseconds - t0.nanoseconds) / Double(done)
        return (total, copy)
    }

    private func measureFlows(_ flows: Int) -> Double {
        var config = Self.config
        config.natPorts = PortRange(1024, 65535)
        config.limits.maxFlows = flows
        let server = Self.ends(family.family).server
        var bytes = [UInt8](repeating: 0, count: 128)
        let generated = PacketBatch(capacity: 4, maxPacket: 2048)
        let before = tsmp_heap_in_use_bytes()
        let engine = SpliceEngine(config: config, logger: Logger(label: "bench"))
        // NAT ports are the limit (one address has 64,512 here): more flows than that take
        // several engines, as they would take several NAT addresses.
        let perEngine = min(flows, 64_000)
        var engines = [engine]
        while engines.count * perEngine < flows { engines.append(SpliceEngine(config: config, logger: Logger(label: "bench"))) }
        for i in 0..<flows {
            let e = engines[i / perEngine]
            let port = UInt16(10_000 + i % 50_000)
            let device = family.family == .ipv4
                ? IPEndpoint(IPv4Address(UInt32(0x0A01_0000) + UInt32(i / 50_000)), port)
                : IPEndpoint(IPv6Address(high: 0xFD00_0001_0000_0000, low: UInt64(i / 50_000) + 2), port)
            let spec = TCPPacketSpec(source: device, destination: server, seq: SeqNumber(UInt32(i)), flags: .syn, window: 64240,
                                     options: [.maximumSegmentSize(1460), .sackPermitted, .timestamp(value: 1, echoReply: 0), .noOperation, .windowScale(7)])
            let n = bytes.withUnsafeMutableBytes { TCPPacketBuilder.write(spec, payload: UnsafeRawBufferPointer(start: nil, count: 0), into: $0)! }
            bytes.withUnsafeMutableBytes { _ = e.process(UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), now: Instant(nanoseconds: 1), generated: generated) }
            generated.removeAll()
        }
        let after = tsmp_heap_in_use_bytes()
        let count = engines.reduce(0) { $0 + $1.flowCount }
        withExtendedLifetime(engines) {}
        return Double(after - before) / Double(max(count, 1))
    }
}
