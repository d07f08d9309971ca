import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Service-address mode (DESIGN §3 mode 2): VIP 10.9.9.9:80 = 10.2.0.2:8080.
@Suite("Service mode")
struct ServiceModeTests {
    let c = Conversation(original: Lab.vip)

    @Test("the destination becomes the target, replies come back from the VIP")
    func splicesToTarget() throws {
        let h = EngineHarness(Lab.service())
        let syn = c.device(.syn, seq: 1000, options: [.maximumSegmentSize(1460), .windowScale(7)])
        let out = h.send(syn)
        #expect(out.verdict == .forward)
        #expect(out.bytes == edited(syn, src: "10.2.0.1:61000", dst: "10.2.0.2:8080"))
        #expect(out.bytes == recomputedChecksums(out.bytes))

        let synAck = c.server([.syn, .ack], seq: 5000, ack: 1001)
        let back = h.send(synAck)
        #expect(back.verdict == .forward)
        #expect(back.bytes == edited(synAck, src: "10.9.9.9:80", dst: "10.1.0.2:40000"))

        c.deviceSends(h, .ack, seq: 1001, ack: 5001)
        c.deviceSends(h, [.psh, .ack], seq: 1001, ack: 5001, payload: pattern(40))
        c.serverSends(h, [.psh, .ack], seq: 5001, ack: 1041, payload: pattern(1000))
        c.deviceSends(h, [.fin, .ack], seq: 1041, ack: 6001)
        c.serverSends(h, [.fin, .ack], seq: 6001, ack: 1042)
        c.deviceSends(h, .ack, seq: 1042, ack: 6002)
        let f = try #require(h.flow())
        #expect(f.state == .closed)
        #expect(f.original == endpoint(Lab.vip) && f.server == endpoint(Lab.server))
        h.advance(seconds: 31)
        h.expire()
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
        #expect(h.countersAddUp)
    }

    @Test("a non-SYN with ACK to the VIP with no flow: dropped (noFlow), RST seq = its ACK")
    func noFlowResetFromAck() throws {
        let h = EngineHarness(Lab.service())
        let stray = c.device([.psh, .ack], seq: 7000, ack: 9000, payload: pattern(25))
        let out = h.send(stray)
        #expect(out.verdict == .drop(.noFlow))
        #expect(h.engine.counters[.noFlow] == 1)
        #expect(out.generated.count == 1)
        // RFC 9293 §3.10.7.1: ACK set -> <SEQ=SEG.ACK><CTL=RST>.
        let rst = try DecodedTCP4(try #require(out.generated.first))
        #expect(rst.source == endpoint(Lab.vip))
        #expect(rst.destination == endpoint(Lab.device))
        #expect(rst.flags == .rst)
        #expect(rst.seq == SeqNumber(9000))
        #expect(rst.ack == SeqNumber(0))
        #expect(rst.payload.isEmpty)
        #expect(rst.checksumsValid)
        #expect(out.generated[0] == recomputedChecksums(out.generated[0]))
        #expect(h.engine.counters.packetsGenerated == 1)
        #expect(h.engine.flowCount == 0)
    }

    @Test("a non-SYN without ACK to the VIP: RST-ACK with seq 0, ack = SEG.SEQ + SEG.LEN")
    func noFlowResetWithoutAck() throws {
        let h = EngineHarness(Lab.service())
        // A FIN with 3 bytes and no ACK bit: SEG.LEN = 3 + 1 (FIN).
        let stray = c.device(.fin, seq: 0xFFFF_FFFE, payload: [1, 2, 3])
        let out = h.send(stray)
        #expect(out.verdict == .drop(.noFlow))
        let rst = try DecodedTCP4(try #require(out.generated.first))
        #expect(rst.flags == [.rst, .ack])
        #expect(rst.seq == SeqNumber(0))
        #expect(rst.ack == SeqNumber(2)) // wraps: 0xFFFFFFFE + 4
        #expect(rst.source == endpoint(Lab.vip) && rst.destination == endpoint(Lab.device))
        #expect(rst.checksumsValid)
    }

    @Test("a RST to the VIP with no flow is dropped and never answered")
    func noFlowResetNotAnswered() throws {
        let h = EngineHarness(Lab.service())
        for p in [c.device(.rst, seq: 5), c.device([.rst, .ack], seq: 5, ack: 6)] {
            let out = h.send(p)
            #expect(out.verdict == .drop(.noFlow))
            #expect(out.generated.isEmpty)
        }
        #expect(h.engine.counters.packetsGenerated == 0)
    }

    @Test("a SYN carrying MPTCP to the VIP is dropped as unspliceable and refused with RST-ACK")
    func mptcpSynToVIP() throws {
        let h = EngineHarness(Lab.service())
        let syn = c.device(.syn, seq: 4242, options: [.maximumSegmentSize(1460), .raw([30, 4, 0x01, 0x01])])
        let out = h.send(syn)
        #expect(out.verdict == .drop(.unspliceable))
        #expect(h.engine.counters[.unspliceable] == 1)
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
        let rst = try DecodedTCP4(try #require(out.generated.first))
        #expect(rst.flags == [.rst, .ack])
        #expect(rst.seq == SeqNumber(0))
        #expect(rst.ack == SeqNumber(4243))
        #expect(rst.source == endpoint(Lab.vip) && rst.destination == endpoint(Lab.device))
    }

    @Test("a server packet to a NAT port that holds no flow is dropped (noFlow), not answered")
    func serverPacketWithoutFlow() throws {
        let h = EngineHarness(Lab.service())
        let out = h.send(c.server(.ack, seq: 1, ack: 2))
        #expect(out.verdict == .drop(.noFlow))
        #expect(out.generated.isEmpty)
    }

    @Test("traffic matching neither a service nor the NAT passes through")
    func otherTrafficPassesThrough() throws {
        let h = EngineHarness(Lab.service())
        let p = tcp4(src: Lab.device, dst: "10.9.9.9:81", flags: .syn, seq: 1)
        let out = h.send(p)
        #expect(out.verdict == .passThrough)
        #expect(out.bytes == p)
        #expect(h.engine.flowCount == 0)
    }

    @Test("a generated RST is dropped quietly when the generated batch is full")
    func generatedBatchFull() throws {
        let engine = SpliceEngine(config: Lab.service())
        let generated = PacketBatch(capacity: 1, maxPacket: 128)
        var first = c.device(.ack, seq: 1, ack: 2)
        var second = c.device(.ack, seq: 3, ack: 4)
        let now = Instant(nanoseconds: 1)
        _ = first.withUnsafeMutableBytes { engine.process($0, now: now, generated: generated) }
        let v = second.withUnsafeMutableBytes { engine.process($0, now: now, generated: generated) }
        #expect(v == .drop(.noFlow))
        #expect(generated.count == 1)
        #expect(engine.counters.packetsGenerated == 1)
    }
}
