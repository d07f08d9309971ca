@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Sequence and acknowledgement remapping (DESIGN §5): offsets are zero until a migration
/// splices a new sub-connection; these tests set them through the internal flow (what the
/// migration code will do) and check every remapped field across the 2^32 wrap.
@Suite("Sequence offsets")
struct SequenceOffsetTests {
    let c = Conversation()
    /// Device ISN and server ISN just below the wrap.
    let deviceISN: UInt32 = 0xFFFF_FF00
    let serverISN: UInt32 = 0xFFFF_FFF0
    /// Device seq -> server seq adds 0x180; server seq -> device seq subtracts 0x100.
    let toServerDelta: UInt32 = 0x180
    let toDeviceDelta: UInt32 = 0 &- 0x100

    func spliced() -> EngineHarness {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h, c: deviceISN, s: serverISN)
        h.modifyFlow { flow in
            flow.toServer.seqOffset = SequenceOffset(delta: toServerDelta)
            flow.toDevice.seqOffset = SequenceOffset(delta: toDeviceDelta)
        }
        return h
    }

    /// Device space -> server space for the device's own sequence numbers.
    func deviceSeqAtServer(_ s: UInt32) -> UInt32 { s &+ toServerDelta }
    /// Server space -> device space for the server's sequence numbers.
    func serverSeqAtDevice(_ s: UInt32) -> UInt32 { s &+ toDeviceDelta }

    @Test("seq, ack and SACK blocks are remapped both ways across the wrap; checksums stay right",
          arguments: [0, 1, 2])
    func remapBothWays(sackPadding: Int) throws {
        let h = spliced()
        let pad = [TCPOption](repeating: .noOperation, count: sackPadding) // SACK words aligned or not
        // Device -> server: seq 0xFFFFFF01 (+0x180 wraps to 0x81); ack of server data in device space.
        let d1 = deviceISN &+ 1
        let ackAtDevice = serverSeqAtDevice(serverISN &+ 1)
        let p1 = c.device([.psh, .ack], seq: d1, ack: ackAtDevice, payload: pattern(0x200))
        let o1 = h.send(p1)
        #expect(o1.verdict == .forward)
        #expect(o1.bytes == c.towardServer(p1, seq: 0x0000_0081, ack: serverISN &+ 1))
        #expect(o1.bytes == recomputedChecksums(o1.bytes))

        // Server -> device: data at 0xFFFFFFF1 (-0x100); its ack (server space of the device's
        // data, 0x281) goes back to device space (0x101, wrapped back); SACK blocks too.
        let s1 = serverISN &+ 1
        let sackAtServer: [(UInt32, UInt32)] = [(0x0000_0381, 0x0000_0481), (0xFFFF_FFF0, 0x0000_0010)]
        let p2 = c.server(.ack, seq: s1, ack: 0x281,
                          options: pad + [.sack(sackAtServer.map { SackBlock(SeqNumber($0.0), SeqNumber($0.1)) })],
                          payload: pattern(100))
        let o2 = h.send(p2)
        #expect(o2.verdict == .forward)
        let sackAtDevice = sackAtServer.map { ($0.0 &- toServerDelta, $0.1 &- toServerDelta) }
        #expect(o2.bytes == c.towardDevice(p2, seq: 0xFFFF_FEF1, ack: 0x0000_0101, sack: sackAtDevice))
        #expect(sackAtDevice[0] == (0x201, 0x301) && sackAtDevice[1] == (0xFFFF_FE70, 0xFFFF_FE90))
        #expect(o2.bytes == recomputedChecksums(o2.bytes))
        let decoded = try o2.decoded
        #expect(decoded.sackBlocks == [SackBlock(SeqNumber(0x201), SeqNumber(0x301)),
                                       SackBlock(SeqNumber(0xFFFF_FE70), SeqNumber(0xFFFF_FE90))])

        // Device -> server: an ACK with SACK blocks of server data (device space) crossing the
        // wrap the other way: 0xFFFFFF55 + 0x100 = 0x55.
        let p3 = c.device(.ack, seq: d1 &+ 0x200, ack: 0xFFFF_FF55,
                          options: pad + [.sack([SackBlock(SeqNumber(0xFFFF_FF80), SeqNumber(0xFFFF_FFA0))])])
        let o3 = h.send(p3)
        #expect(o3.bytes == c.towardServer(p3, seq: deviceSeqAtServer(d1 &+ 0x200), ack: 0x0000_0055,
                                           sack: [(0xFFFF_FF80 &+ 0x100, 0xFFFF_FFA0 &+ 0x100)]))
        #expect(o3.bytes == recomputedChecksums(o3.bytes))
        #expect(h.state() == .established)
    }

    @Test("without the ACK bit the ack field is left alone")
    func ackFieldWithoutAckBit() throws {
        let h = spliced()
        let p = c.device(.rst, seq: deviceISN &+ 1, ack: 0x1234_5678)
        let o = h.send(p)
        #expect(o.bytes == c.towardServer(p, seq: deviceSeqAtServer(deviceISN &+ 1)))
    }

    @Test("the device's ACK (device space) trims the in-flight copy (server space)")
    func inFlightCopyUnderOffset() throws {
        let h = spliced()
        let s1 = serverISN &+ 1
        h.send(c.server(.ack, seq: s1, ack: deviceSeqAtServer(deviceISN &+ 1), payload: pattern(100)))
        h.send(c.server(.ack, seq: s1 &+ 100, ack: deviceSeqAtServer(deviceISN &+ 1), payload: pattern(100, from: 100)))
        let copy = try #require(h.internalFlow()?.inFlight)
        #expect(copy.start == SeqNumber(s1) && copy.count == 200)
        // The device acknowledges the first 150 bytes, in its own space.
        h.send(c.device(.ack, seq: deviceISN &+ 1, ack: serverSeqAtDevice(s1 &+ 150)))
        #expect(h.internalFlow()?.inFlight?.start == SeqNumber(s1 &+ 150))
        #expect(h.flow()?.inFlightBytes == 50)
        h.send(c.device(.ack, seq: deviceISN &+ 1, ack: serverSeqAtDevice(s1 &+ 200)))
        #expect(h.flow()?.inFlightBytes == 0)
    }

    @Test("FIN/FIN-ACK/ACK under offsets still ends in closed", arguments: [true, false])
    func closeUnderOffsets(deviceFirst: Bool) throws {
        let h = spliced()
        let d = deviceISN &+ 1, s = serverISN &+ 1
        if deviceFirst {
            h.send(c.device([.fin, .ack], seq: d, ack: serverSeqAtDevice(s)))
            h.send(c.server([.fin, .ack], seq: s, ack: deviceSeqAtServer(d &+ 1)))
            #expect(h.state() == .halfClosed)
            h.send(c.device(.ack, seq: d &+ 1, ack: serverSeqAtDevice(s &+ 1)))
        } else {
            h.send(c.server([.fin, .ack], seq: s, ack: deviceSeqAtServer(d)))
            h.send(c.device([.fin, .ack], seq: d, ack: serverSeqAtDevice(s &+ 1)))
            #expect(h.state() == .halfClosed)
            h.send(c.server(.ack, seq: s &+ 1, ack: deviceSeqAtServer(d &+ 1)))
        }
        #expect(h.state() == .closed)
    }

    @Test("an ACK that does not cover the FIN (in the receiver's space) does not close")
    func finNotCoveredUnderOffsets() throws {
        let h = spliced()
        let d = deviceISN &+ 1, s = serverISN &+ 1
        h.send(c.device([.fin, .ack], seq: d, ack: serverSeqAtDevice(s)))
        // The server acknowledges only up to the FIN (not past it), in server space.
        h.send(c.server([.fin, .ack], seq: s, ack: deviceSeqAtServer(d)))
        h.send(c.device(.ack, seq: d &+ 1, ack: serverSeqAtDevice(s &+ 1)))
        #expect(h.state() == .halfClosed)
        #expect(h.internalFlow()?.toServer.finAcked == false)
        #expect(h.internalFlow()?.toDevice.finAcked == true)
    }

    @Test("randomized: every rewrite equals the reference (fields set, checksums summed from scratch)")
    func randomizedAgainstReference() throws {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x0FF5_E75E)
        for _ in 0..<40 {
            let h = EngineHarness(Lab.transparent())
            let devicePort = UInt16(truncatingIfNeeded: rng.next() % 60_000 + 1024)
            let conv = Conversation(device: "10.1.0.\(rng.next() % 250 + 2):\(devicePort)")
            let c0 = UInt32(truncatingIfNeeded: rng.next()), s0 = UInt32(truncatingIfNeeded: rng.next())
            conv.handshake(h, c: c0, s: s0)
            let up = UInt32(truncatingIfNeeded: rng.next()), down = UInt32(truncatingIfNeeded: rng.next())
            h.modifyFlow { flow in
                flow.toServer.seqOffset = SequenceOffset(delta: up)
                flow.toDevice.seqOffset = SequenceOffset(delta: down)
            }
            for _ in 0..<50 {
                let seq = UInt32(truncatingIfNeeded: rng.next()), ack = UInt32(truncatingIfNeeded: rng.next())
                let blocks = (0..<Int(rng.next() % 4)).map { _ in
                    (UInt32(truncatingIfNeeded: rng.next()), UInt32(truncatingIfNeeded: rng.next()))
                }
                var options = [TCPOption](repeating: .noOperation, count: Int(rng.next() % 3))
                if !blocks.isEmpty { options.append(.sack(blocks.map { SackBlock(SeqNumber($0.0), SeqNumber($0.1)) })) }
                let payload = rng.bytes(Int(rng.next() % 64))
                let flags: TCPFlags = rng.next() % 8 == 0 ? .psh : [.psh, .ack]
                let hasAck = flags.contains(.ack)
                if rng.next() % 2 == 0 {
                    let p = conv.device(flags, seq: seq, ack: ack, options: options, payload: payload)
                    let out = h.send(p)
                    let expected = conv.towardServer(p, seq: seq &+ up, ack: hasAck ? ack &- down : nil,
                                                     sack: hasAck ? blocks.map { ($0.0 &- down, $0.1 &- down) } : nil)
                    #expect(out.bytes == expected, "seed \(rng.seed)")
                } else {
                    let p = conv.server(flags, seq: seq, ack: ack, options: options, payload: payload)
                    let out = h.send(p)
                    let expected = conv.towardDevice(p, seq: seq &+ down, ack: hasAck ? ack &- up : nil,
                                                     sack: hasAck ? blocks.map { ($0.0 &- up, $0.1 &- up) } : nil)
                    #expect(out.bytes == expected, "seed \(rng.seed)")
                }
            }
        }
    }
}
