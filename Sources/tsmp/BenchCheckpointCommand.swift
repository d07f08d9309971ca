#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Engine
import Forwarding
import Foundation
import Logging
import PacketIO
import Wire

/// `tsmp bench-checkpoint`: what restart survival costs (issue "Survive a proxy restart",
/// benchmark), offline: the checkpoint's cost per flow event, and the time to read a
/// checkpoint back and adopt its flows, each beside a baseline measured in the same run.
struct BenchCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-checkpoint",
        abstract: "Measure the flow checkpoint offline: cost per flow event, time to adopt N flows.",
        discussion: """
        Per flow event: --events-flows handshakes (SYN, SYN-ACK, ACK: three events each) run \
        through an engine that records its flows' changes, each change appended to a \
        checkpoint file in --directory (a tmpfs, as /run is), once per packet (the worst case: \
        the data plane appends once per batch) and once per 64 packets; the same handshakes \
        through an engine that records nothing are the baseline. The share of one core at \
        1,000 new flows per second follows from it. Adoption: for each of --adopt flows, a \
        checkpoint written by engines holding them is read back, checked and adopted by fresh \
        engines (one engine holds at most 64,000 flows: one NAT address's ports); the \
        baseline is creating the same flows from their SYNs. Times are the thread's CPU time.

        Examples:
          tsmp bench-checkpoint
          tsmp bench-checkpoint --adopt 10,1000,100000 --directory /dev/shm
        """)

    @Option(help: "Flows whose handshakes measure the cost per flow event.")
    var eventsFlows = 20_000

    @Option(help: "Flow counts to adopt, comma separated.", transform: { text in
        try text.split(separator: ",").map { part in
            guard let n = Int(part), n > 0, n <= 1_000_000 else { throw ValidationError("--adopt: '\(part)' is not a count in 1...1000000") }
            return n
        }
    })
    var adopt: [Int] = [10, 1_000, 100_000]

    @Option(help: "Where the checkpoint files are written (removed again); a tmpfs like /run.")
    var directory = "/dev/shm"

    @Option(help: "Runs of each measurement; the median is reported.")
    var rounds = 5

    func run() throws {
        let path = "\(directory)/tsmp-bench-checkpoint-\(getpid())"
        defer { unlink(path); unlink(path + ".new") }
        let plain = median((0..<rounds).map { _ in handshakes(record: nil) })
        let perPacket = median((0..<rounds).map { _ in handshakes(record: (path, 1)) })
        let perBatch = median((0..<rounds).map { _ in handshakes(record: (path, 64)) })
        let events = Double(eventsFlows * 3)
        print("flow events: \(eventsFlows) handshakes, \(Int(events)) events (created, SYN-ACK seen, established)")
        print("  engine alone (baseline):           \(format(plain / events)) ns per event")
        for (name, t) in [("checkpoint, one write per event:  ", perPacket), ("checkpoint, one write per 64:     ", perBatch)] {
            let extra = max(0, t - plain) / events
            print("  \(name)\(format(t / events)) ns per event (x\(format2(t / plain)) the baseline; +\(format(extra)) ns per event; at 1,000 new flows/s: \(format2(extra * 3 * 1_000 / 1e7))% of a core)")
        }
        print("adoption (read, check, adopt) against creating the same flows from their SYNs:")
        for n in adopt {
            let (adoptNs, createNs, bytes) = adoption(flows: n, path: path)
            print("  \(n) flows: \(format(adoptNs / 1e6)) ms to adopt (\(bytes < 10_240 ? "\(bytes) B" : "\(bytes / 1024) KiB") checkpoint), \(format(createNs / 1e6)) ms to create (x\(format2(adoptNs / createNs)))")
        }
    }

    // MARK: Flow events

    private static let server = IPv4Endpoint(IPv4Address(10, 2, 0, 2), 8080)

    private func config(flows: Int) -> EngineConfig {
        var config = EngineConfig(nat: IPv4Address(10, 2, 0, 1), natPorts: PortRange(1024, 65535), intercepts: [PortRange(8080, 8080)])
        config.limits.maxFlows = flows
        return config
    }

    private static func device(_ i: Int) -> IPv4Endpoint {
        IPv4Endpoint(IPv4Address(UInt32(0x0A01_0000) + UInt32(i / 50_000)), UInt16(10_000 + i % 50_000))
    }

    private static let synOptions: [TCPOption] = [.maximumSegmentSize(1460), .sackPermitted, .timestamp(value: 1, echoReply: 0), .noOperation, .windowScale(7)]

    /// CPU nanoseconds for `eventsFlows` handshakes; with `record`, each change appended to the
    /// file at `record.path` every `record.every` packets.
    private func handshakes(record: (path: String, every: Int)?) -> Double {
        let engine = SpliceEngine(config: config(flows: eventsFlows), logger: Logger(label: "bench"))
        let file: FlowCheckpointFile?
        if let record {
            engine.recordsCheckpointChanges = true
            file = try? FlowCheckpointFile(path: record.path, setup: 1)
        } else {
            file = nil
        }
        let generated = PacketBatch(capacity: 4, maxPacket: 2048)
        var bytes = [UInt8](repeating: 0, count: 128)
        var packets = 0
        let t0 = Syscall.threadCPUNow()
        for i in 0..<eventsFlows {
            let device = Self.device(i)
            let nat = IPv4Endpoint(engine.config.nat, 0)   // the port is the flow's, known after the SYN
            let specs = [
                TCPPacketSpec(source: device, destination: Self.server, seq: SeqNumber(1000), flags: .syn, window: 64240, options: Self.synOptions),
                TCPPacketSpec(source: Self.server, destination: nat, seq: SeqNumber(5000), ack: SeqNumber(1001), flags: [.syn, .ack], window: 65160, options: Self.synOptions),
                TCPPacketSpec(source: device, destination: Self.server, seq: SeqNumber(1001), ack: SeqNumber(5001), flags: .ack, window: 502),
            ]
            var natPort: UInt16 = 0
            for (k, var spec) in specs.enumerated() {
                if k == 1 { spec.destination = IPEndpoint(engine.config.nat, natPort) }
                let n = bytes.withUnsafeMutableBytes { TCPPacketBuilder.write(spec, payload: UnsafeRawBufferPointer(start: nil, count: 0), into: $0)! }
                bytes.withUnsafeMutableBytes { _ = engine.process(UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), now: Instant(nanoseconds: 1), generated: generated) }
                // The SYN, rewritten in place, leaves from the flow's NAT port.
                if k == 0 { natPort = bytes.withUnsafeBytes { HeaderPeek(UnsafeRawBufferPointer(rebasing: $0[0..<n])).ipv4TCP?.source.port } ?? 0 }
                generated.removeAll()
                packets += 1
                if let record, let file, packets % record.every == 0 { try? file.append(engine.takeCheckpointRecords()) }
            }
        }
        if let file { try? file.append(engine.takeCheckpointRecords()) }
        return Double(Syscall.threadCPUNow().nanoseconds - t0.nanoseconds)
    }

    // MARK: Adoption

    /// CPU nanoseconds to read, check and adopt `flows` flows, to create them from SYNs, and
    /// the checkpoint's size.
    private func adoption(flows: Int, path: String) -> (adopt: Double, create: Double, bytes: Int) {
        let perEngine = min(flows, 64_000)
        let engines = (flows + perEngine - 1) / perEngine
        var adoptTimes: [Double] = [], createTimes: [Double] = []
        var size = 0
        for _ in 0..<rounds {
            var t0 = Syscall.threadCPUNow()
            var sources: [SpliceEngine] = []
            for e in 0..<engines {
                let engine = SpliceEngine(config: config(flows: perEngine), logger: Logger(label: "bench"))
                let generated = PacketBatch(capacity: 4, maxPacket: 2048)
                var bytes = [UInt8](repeating: 0, count: 128)
                for i in (e * perEngine)..<min(flows, (e + 1) * perEngine) {
                    let spec = TCPPacketSpec(source: Self.device(i), destination: Self.server, seq: SeqNumber(UInt32(i)), flags: .syn,
                                             window: 64240, options: Self.synOptions)
                    let n = bytes.withUnsafeMutableBytes { TCPPacketBuilder.write(spec, payload: UnsafeRawBufferPointer(start: nil, count: 0), into: $0)! }
                    bytes.withUnsafeMutableBytes { _ = engine.process(UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), now: Instant(nanoseconds: 1), generated: generated) }
                    generated.removeAll()
                }
                sources.append(engine)
            }
            createTimes.append(Double(Syscall.threadCPUNow().nanoseconds - t0.nanoseconds))
            let paths = (0..<engines).map { "\(path).\($0)" }
            defer { for p in paths { unlink(p) } }
            size = 0
            for (e, engine) in sources.enumerated() {
                _ = try? FlowCheckpointFile(path: paths[e], setup: 1, flows: engine.checkpoints())
                size += Int((try? FileManager.default.attributesOfItem(atPath: paths[e])[.size] as? Int) ?? 0)
            }
            t0 = Syscall.threadCPUNow()
            var adopted = 0
            for p in paths {
                guard let contents = try? FlowCheckpointFile.read(path: p, setup: 1) else { continue }
                let engine = SpliceEngine(config: config(flows: perEngine), logger: Logger(label: "bench"))
                adopted += engine.adopt(contents.flows, now: Instant(nanoseconds: 2)).adopted.count
            }
            adoptTimes.append(Double(Syscall.threadCPUNow().nanoseconds - t0.nanoseconds))
            if adopted != flows { print("  (only \(adopted) of \(flows) flows were adopted)") }
        }
        return (median(adoptTimes), median(createTimes), size)
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    private func format(_ v: Double) -> String { String(format: "%.1f", v) }
    private func format2(_ v: Double) -> String { String(format: "%.2f", v) }
}
