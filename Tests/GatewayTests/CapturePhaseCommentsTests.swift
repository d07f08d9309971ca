import Engine
import Foundation
@testable import Forwarding
@testable import Gateway
import Logging
import PacketIO
import Testing
import TestSupport
import Wire

/// A `--capture` pcapng carries a comment at each migration phase (issue 17): on the flow's
/// first packet captured after the phase change, in the order the phases were entered.
@Suite("Capture: migration phases as pcapng comments")
struct CapturePhaseCommentsTests {
    static let laptop = endpoint("10.1.0.2:40000")
    static let server = endpoint("10.2.0.2:8080")
    static let other = endpoint("10.1.0.9:41000")

    func packet(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> [String]) -> [String] {
        bytes.withUnsafeBytes(body)
    }

    @Test("a comment waits for a packet of its flow (either direction), then a stale one goes on any packet; order is kept")
    func matching() {
        var comments = CapturePhaseComments()
        let t0 = Instant(nanoseconds: 10_000_000_000)
        comments.queue("first", endpoints: [Self.laptop], now: t0)
        comments.queue("second", endpoints: [Self.laptop], now: t0)
        comments.queue("elsewhere", endpoints: [endpoint("10.3.0.2:50000")], now: t0)
        let unrelated = tcp4(src: Self.other, dst: Self.server, flags: .ack, seq: 1)
        #expect(packet(unrelated) { comments.take(for: $0, now: t0) }.isEmpty)
        let reply = tcp4(src: Self.server, dst: Self.laptop, flags: .ack, seq: 1)
        #expect(packet(reply) { comments.take(for: $0, now: t0) } == ["first", "second"])
        #expect(packet(reply) { comments.take(for: $0, now: t0) }.isEmpty, "taken once")
        #expect(comments.pending.map(\.text) == ["elsewhere"])
        // Not IPv4 TCP at all: only stale comments go on it.
        #expect(packet([0x60, 0, 0, 0]) { comments.take(for: $0, now: t0) }.isEmpty)
        let later = Instant(nanoseconds: t0.nanoseconds + CapturePhaseComments.staleAfterNanoseconds)
        #expect(packet(unrelated) { comments.take(for: $0, now: later) } == ["elsewhere"])
        #expect(comments.pending.isEmpty)
    }

    @Test("at most maximumPending comments wait; the oldest are left out and counted")
    func bounded() {
        var comments = CapturePhaseComments()
        for i in 0..<(CapturePhaseComments.maximumPending + 3) {
            comments.queue("c\(i)", endpoints: [Self.laptop], now: Instant(nanoseconds: 1))
        }
        #expect(comments.pending.count == CapturePhaseComments.maximumPending)
        #expect(comments.dropped == 3 && comments.pending.first?.text == "c3")
    }

    @Test("the text names migration, flow and phase, with what each phase fixed")
    func text() {
        let report = MigrationReport(id: 4, flow: 9, oldDevice: Self.laptop, target: MigrationTarget(address: address("10.3.0.2")),
                                     newDevice: endpoint("10.3.0.2:50000"), phase: .spliced, phases: [],
                                     cutOffsetToDevice: 1_800_000, cutOffsetToServer: 0, bytesCached: 2896,
                                     retransmissions: 0, timeouts: 0, reason: nil)
        func t(_ phase: MigrationPhase, _ detail: String? = nil) -> String {
            CapturePhaseComments.text(migration: 4, flow: 9, phase: phase, report: report, detail: detail)
        }
        #expect(t(.requested) == "tsmp: migration 4 flow 9 phase requested (old device 10.1.0.2:40000, to 10.3.0.2)")
        #expect(t(.oldDeviceCut) == "tsmp: migration 4 flow 9 phase old-device-cut (cut offsets: to device 1800000 B, to server 0 B)")
        #expect(t(.newDeviceConnected) == "tsmp: migration 4 flow 9 phase new-device-connected (new device 10.3.0.2:50000)")
        #expect(t(.cacheDrained) == "tsmp: migration 4 flow 9 phase cache-drained (2896 B delivered from the cache)")
        #expect(t(.rolledBack, "the new device did not connect") == "tsmp: migration 4 flow 9 phase rolled-back (the new device did not connect)")
        #expect(CapturePhaseComments.text(migration: 4, flow: 9, phase: .aborted, report: nil, detail: nil)
                == "tsmp: migration 4 flow 9 phase aborted")
    }

    @Test("""
        a migration through a data plane with a pcapng capture: each phase of its report is a comment, in order, on a \
        packet of the flow; libpcap reads the capture, and so does tshark
        """)
    func migrationInACapture() async throws {
        let path = NSTemporaryDirectory() + "tsmp-capture-\(UInt64.random(in: 0 ... .max))-phases.pcapng"
        defer { try? Syscall.unlink(path) }
        let writer = try PcapFileWriter(path: path, format: .pcapng)
        let queue = try QueueDevice()
        let plane = try ShardedDataPlane(config: EngineConfig(nat: address("10.2.0.1"), intercepts: [PortRange(8080, 8080)]),
                                         queues: [(queue, queue)], capture: writer, logger: Logger(label: "test"))
        plane.start()
        func waitFor(_ what: String, _ match: (DecodedTCP4) -> Bool) async throws -> DecodedTCP4 {
            for _ in 0..<300 {
                if let p = queue.written.first(where: match) { return p }
                try await Task.sleep(for: .milliseconds(10))
            }
            Issue.record("never written: \(what)")
            throw CancellationError()
        }
        let s = Self.server, laptop = Self.laptop, phone = endpoint("10.3.0.2:50000")
        queue.enqueue(tcp4(src: laptop, dst: s, flags: .syn, seq: 1000, options: [.maximumSegmentSize(1460)]))
        let syn = try await waitFor("the SYN toward the server") { $0.flags == .syn && $0.destination == s }
        queue.enqueue(tcp4(src: s, dst: syn.source, flags: [.syn, .ack], seq: 5000, ack: 1001, options: [.maximumSegmentSize(1460)]))
        _ = try await waitFor("the SYN-ACK") { $0.flags == [.syn, .ack] && $0.destination == laptop }
        queue.enqueue(tcp4(src: laptop, dst: s, flags: .ack, seq: 1001, ack: 5001))
        _ = try await waitFor("the handshake's ACK") { $0.flags == .ack && $0.source == syn.source }
        let flow = try #require(await plane.listing().flows.first)
        let mid = try #require(await plane.startMigrations([flow.id], to: MigrationTarget(address: phone.address),
                                                           deadline: .seconds(10)).first?.migration)
        queue.enqueue(tcp4(src: phone, dst: s, flags: .syn, seq: 77_000, options: [.maximumSegmentSize(1460)]))
        let synAck = try await waitFor("the proxy's SYN-ACK to the phone") { $0.flags == [.syn, .ack] && $0.destination == phone }
        queue.enqueue(tcp4(src: phone, dst: s, flags: .ack, seq: 77_001, ack: synAck.seq.rawValue &+ 1))
        var report: MigrationReport?
        for _ in 0..<300 {
            report = await plane.reports([mid]).first
            if report?.phase == .spliced { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        queue.enqueue(tcp4(src: phone, dst: s, flags: [.ack, .psh], seq: 77_001, ack: synAck.seq.rawValue &+ 1, payload: Array("hi".utf8)))
        _ = try await waitFor("the phone's data toward the server") { $0.payload == Array("hi".utf8) }
        plane.stop()
        await plane.waitUntilStopped()
        try writer.close()

        let phases = try #require(report?.phases.map(\.phase))
        #expect(phases.first == .requested && phases.last == .spliced)
        let scan = try PcapngScan(path: path)
        let commented = scan.packets.filter { !$0.comments.isEmpty }
        let comments = commented.flatMap(\.comments)
        let prefix = "tsmp: migration \(mid) flow \(flow.id) phase "
        #expect(comments.allSatisfy { $0.hasPrefix(prefix) }, "\(comments)")
        #expect(comments.map { $0.dropFirst(prefix.count).prefix { $0 != " " } } == phases.map { Substring($0.rawValue) })
        // Each on a packet of the flow: the laptop, the phone or the NAT side.
        let flowEnds = [laptop, phone, syn.source]
        for p in commented {
            let ends = Array(p.frame.dropFirst(16)).withUnsafeBytes { HeaderPeek($0).tcpEndpoints }
            #expect(ends.map { flowEnds.contains($0.source) || flowEnds.contains($0.destination) } == true, "\(p.comments)")
        }
        #expect(comments.contains { $0.contains("cut offsets: to device 0 B, to server 0 B") })
        #expect(comments.contains { $0.contains("new device \(phone)") })
        #expect(try PcapFileReader(path: path).linkType == .linuxSLL)
        if Tshark.path != nil {
            let lines = try await Tshark.fields(path, ["frame.comment"]).get()
            #expect(lines.count == scan.packets.count)
            #expect(lines.filter { !$0.isEmpty }.flatMap { $0.split(separator: ",").filter { $0.hasPrefix("tsmp: ") } }.count
                    == phases.count)
        }
    }
}
