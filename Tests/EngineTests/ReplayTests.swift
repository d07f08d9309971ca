import Engine
import Forwarding
import PacketIO
import Testing
import TestSupport
import Wire

/// `tsmp replay` offline: a scripted capture fed from an in-memory device.
@Suite("Replay")
struct ReplayTests {
    static func at(_ seconds: Double) -> Instant { Instant(nanoseconds: UInt64(seconds * 1e9)) }

    /// A whole connection in transparent mode, plus what a capture of a running proxy also holds.
    static func capture(_ c: Conversation) -> (MemoryDevice, expected: [[UInt8]]) {
        let input = MemoryDevice(isFinite: true)
        var expected: [[UInt8]] = []
        func device(_ p: [UInt8], _ t: Double) { input.enqueue(p, at: at(t)); expected.append(c.towardServer(p)) }
        func server(_ p: [UInt8], _ t: Double) { input.enqueue(p, at: at(t)); expected.append(c.towardDevice(p)) }
        device(c.device(.syn, seq: 1000, options: [.maximumSegmentSize(1460)]), 1.000)
        // What an engine wrote, as `tsmp proxy --capture` records it: skipped.
        input.enqueue(c.towardServer(c.device(.syn, seq: 1000, options: [.maximumSegmentSize(1460)])),
                      at: at(1.000), direction: .outbound)
        server(c.server([.syn, .ack], seq: 5000, ack: 1001, options: [.maximumSegmentSize(1400)]), 1.010)
        device(c.device(.ack, seq: 1001, ack: 5001), 1.020)
        device(c.device([.psh, .ack], seq: 1001, ack: 5001, payload: Array("hello".utf8)), 1.021)
        server(c.server([.psh, .ack], seq: 5001, ack: 1006, payload: pattern(1400)), 1.030)
        server(c.server([.psh, .ack], seq: 6401, ack: 1006, payload: pattern(600, from: 1400)), 1.031)
        device(c.device(.ack, seq: 1006, ack: 7001), 1.040)
        device(c.device([.fin, .ack], seq: 1006, ack: 7001), 1.500)
        server(c.server([.fin, .ack], seq: 7001, ack: 1007), 1.510)
        device(c.device(.ack, seq: 1007, ack: 7002), 1.520)
        // Malformed: counted, skipped, not emitted.
        input.enqueue([0x45, 0, 0, 20], at: at(2.0))
        // An unmanaged packet 40 s later: passed through; the expiry it triggers ends the flow.
        let late = tcp4(src: "10.1.0.7:5000", dst: "10.2.0.2:22", seq: 1, ack: 1)
        input.enqueue(late, at: at(42.0))
        expected.append(late)
        return (input, expected)
    }

    @Test("a scripted exchange: rewritten output, report, and no flow left after expiry")
    func transparentExchange() throws {
        let c = Conversation()
        let (input, expected) = Self.capture(c)
        let output = MemoryDevice()
        let report = try Replay(engine: SpliceEngine(config: Lab.transparent())).run(input: input, output: output)
        #expect(report.packetsReplayed == 12)
        #expect(report.packetsSkippedAsOutbound == 1)
        #expect(report.packetsEmitted == 11)
        #expect(report.flowsLeft == 0)
        let status = try #require(report.status)
        #expect(status.flowsCreated == 1 && status.flowsClosed == 1 && status.flowsExpired == 0)
        #expect(status.packetsForwarded == 10 && status.packetsPassedThrough == 1)
        #expect(status.drops == ["truncated": 1])
        #expect(status.natPortsInUse == 0 && status.inFlightStorageBytes == 0)
        #expect(output.written.map(\.bytes) == expected)
        #expect(output.written.map(\.time) == [1.000, 1.010, 1.020, 1.021, 1.030, 1.031, 1.040, 1.500, 1.510, 1.520, 42.0].map(Self.at))
    }

    @Test("replay is deterministic: the same capture gives the same bytes")
    func deterministic() throws {
        var outputs: [[[UInt8]]] = []
        var reports: [Replay.Report] = []
        for _ in 0..<2 {
            let (input, _) = Self.capture(Conversation())
            let output = MemoryDevice()
            reports.append(try Replay(engine: SpliceEngine(config: Lab.transparent())).run(input: input, output: output))
            outputs.append(output.written.map(\.bytes))
        }
        #expect(outputs[0] == outputs[1])
        #expect(reports[0] == reports[1])
    }

    @Test("service mode: generated RSTs are emitted with the capture's clock; no output device is fine")
    func serviceModeGenerated() throws {
        let c = Conversation(original: Lab.vip)
        let input = MemoryDevice(isFinite: true)
        input.enqueue(c.device(.ack, seq: 1, ack: 2), at: Self.at(3.5)) // no flow: RST toward the device
        input.enqueue(c.device(.syn, seq: 1000), at: Self.at(4.0))
        let output = MemoryDevice()
        let report = try Replay(engine: SpliceEngine(config: Lab.service())).run(input: input, output: output)
        #expect(report.packetsReplayed == 2 && report.packetsEmitted == 2)
        #expect(output.written.count == 2)
        let rst = try DecodedTCP4(output.written[0].bytes)
        #expect(rst.flags == .rst && rst.seq == SeqNumber(2))
        #expect(rst.source == endpoint(Lab.vip) && rst.destination == endpoint(Lab.device))
        #expect(output.written[0].time == Self.at(3.5))
        #expect(output.written[1].bytes == c.towardServer(c.device(.syn, seq: 1000)))
        #expect(report.flowsLeft == 1) // an embryonic flow at the end of the capture

        let again = MemoryDevice(isFinite: true)
        again.enqueue(c.device(.ack, seq: 1, ack: 2))
        let quiet = try Replay(engine: SpliceEngine(config: Lab.service())).run(input: again, output: nil)
        #expect(quiet.packetsEmitted == 1 && quiet.status?.drops == ["no_flow": 1])
    }

    @Test("a capture whose clock steps back does not move the engine's clock back")
    func clockSteppingBack() throws {
        let c = Conversation()
        let input = MemoryDevice(isFinite: true)
        input.enqueue(c.device(.syn, seq: 1), at: Self.at(100))
        input.enqueue(c.device(.rst, seq: 2), at: Self.at(10)) // out of order in the file
        input.enqueue(tcp4(src: "10.1.0.7:5000", dst: "10.2.0.2:22", seq: 1, ack: 1), at: Self.at(129))
        let output = MemoryDevice()
        let report = try Replay(engine: SpliceEngine(config: Lab.transparent())).run(input: input, output: output)
        // The RST counts as seen at 100 s: at 129 s its 30 s linger is not over yet.
        #expect(report.flowsLeft == 1)
        // Forwarded packets keep their own capture time.
        #expect(output.written.map(\.time) == [100, 10, 129].map(Self.at))
    }
}
