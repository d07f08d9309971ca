@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// IPv4 fragments of managed flows (issue 13 item 11; RFC 791 §3.2): put back together before
/// the engine looks at them, within limits, and never a datagram made of overlapping pieces.
@Suite("IPv4 reassembly")
struct FragmentReassemblyTests {
    let c = Conversation()
    let t0 = Instant(nanoseconds: 1_000_000_000)

    /// A device segment with `n` payload bytes, DF clear (so a router may cut it), IP ID `id`.
    func segment(_ n: Int, id: UInt16 = 77, seq: UInt32 = 1001, src: String = Lab.device) -> [UInt8] {
        tcp4(src: src, dst: Lab.server, flags: [.ack, .psh], seq: seq, ack: 5001,
             payload: (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7) }, id: id, dontFragment: false)
    }

    /// Feeds `pieces` to a reassembler, one after the other; the outcomes.
    func feed(_ r: inout IPv4Reassembly, _ pieces: [[UInt8]], at now: Instant) -> [IPv4Reassembly.Outcome] {
        pieces.map { piece in
            var bytes = piece
            return bytes.withUnsafeMutableBytes { r.add(try! IPv4Packet(validating: $0), now: now) }
        }
    }

    @Test("pieces in order, out of order and with a duplicate give back the datagram byte for byte")
    func wholeAgain() {
        let whole = segment(1000)
        let pieces = ipv4Fragments(whole, sizes: [512, 256])
        #expect(pieces.count == 3 && pieces[0].count == 20 + 512)
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 2, 0]] {
            var r = IPv4Reassembly()
            let outcomes = feed(&r, order.map { pieces[$0] }, at: t0)
            #expect(outcomes.dropLast().allSatisfy { $0 == .held })
            #expect(outcomes.last == .complete(whole), "order \(order)")
            #expect(r.datagramsHeld == 0 && r.bytesHeld == 0)
        }
        // Six pieces: gaps closed from the left, from the right and from both sides at once.
        let six = ipv4Fragments(whole, sizes: [128, 128, 128, 128, 256])
        #expect(six.count == 6)
        for order in [[5, 3, 1, 0, 2, 4], [2, 4, 3, 1, 5, 0], [5, 4, 3, 2, 1, 0], [0, 2, 4, 1, 5, 3]] {
            var r = IPv4Reassembly()
            let outcomes = feed(&r, order.map { six[$0] }, at: t0)
            #expect(outcomes.dropLast().allSatisfy { $0 == .held }, "order \(order)")
            #expect(outcomes.last == .complete(whole), "order \(order)")
            #expect(r.datagramsHeld == 0 && r.bytesHeld == 0)
        }
    }

    @Test("a piece overlapping one held discards the datagram; the rest starts anew")
    func overlapDiscards() {
        let whole = segment(1000)
        let pieces = ipv4Fragments(whole, sizes: [512, 256])
        var r = IPv4Reassembly()
        // Another cut of the same datagram: 504 bytes from offset 0 overlaps... a piece at 496.
        let other = ipv4Fragments(whole, sizes: [496, 256])
        #expect(feed(&r, [pieces[0], other[1]], at: t0) == [.held, .dropped(.fragmentOverlap)])
        #expect(r.datagramsHeld == 0 && r.bytesHeld == 0)
        // A last piece that ends elsewhere than an earlier last piece said.
        #expect(feed(&r, [pieces[2], other[2]], at: t0) == [.held, .dropped(.fragmentOverlap)])
        #expect(r.datagramsHeld == 0)
    }

    @Test("a piece that is not a multiple of 8 bytes though more follow, or ends past 65,535, is refused")
    func malformed() {
        var bad = ipv4Fragments(segment(1000), sizes: [512])[0]
        bad.removeLast(3)
        bad[2] = UInt8(bad.count >> 8); bad[3] = UInt8(bad.count & 0xFF)
        refillIPv4HeaderChecksum(&bad)
        var r = IPv4Reassembly()
        #expect(feed(&r, [bad], at: t0) == [.dropped(.fragmentMalformed)])
        var far = ipv4Fragments(segment(1000), sizes: [512])[1]
        far[6] = 0x1F; far[7] = 0xFF   // offset 65,528, last piece
        refillIPv4HeaderChecksum(&far)
        #expect(feed(&r, [far], at: t0) == [.dropped(.fragmentMalformed)])
        #expect(r.datagramsHeld == 0)
    }

    @Test("an incomplete datagram is given up after 15 s, its bytes released")
    func timeout() {
        var r = IPv4Reassembly()
        let pieces = ipv4Fragments(segment(1000), sizes: [512])
        #expect(feed(&r, [pieces[0]], at: t0) == [.held])
        #expect(r.bytesHeld == 20 + 512)
        #expect(r.expire(now: Instant(nanoseconds: t0.nanoseconds + 14_000_000_000)) == 0)
        #expect(r.datagramsHeld == 1)
        #expect(r.expire(now: Instant(nanoseconds: t0.nanoseconds + 16_000_000_000)) == 1)
        #expect(r.datagramsHeld == 0 && r.bytesHeld == 0)
    }

    @Test("limits are per source: one sender's flood of first pieces does not lock out another")
    func perSourceLimit() {
        var r = IPv4Reassembly()
        let firsts = (0..<33).map { ipv4Fragments(segment(1000, id: UInt16($0)), sizes: [512])[0] }
        let outcomes = feed(&r, firsts, at: t0)
        #expect(outcomes.prefix(32).allSatisfy { $0 == .held })
        #expect(outcomes.last == .dropped(.fragmentLimit))
        let other = ipv4Fragments(segment(1000, src: "10.1.0.3:40000"), sizes: [512])
        #expect(feed(&r, other, at: t0).last == .complete(segment(1000, src: "10.1.0.3:40000")))
        var tight = IPv4Reassembly()
        tight.maxBytes = 1000
        let two = (0..<2).map { ipv4Fragments(segment(1000, id: UInt16(100 + $0)), sizes: [512])[0] }
        #expect(feed(&tight, two, at: t0) == [.held, .dropped(.fragmentLimit)])
    }

    @Test("the engine forwards a device segment that came in three pieces as one, NAT'd; no drop")
    func engineReassemblesBeforeForwarding() throws {
        let h = EngineHarness(Lab.transparent())
        c.deviceSends(h, .syn, seq: 1000)
        c.serverSends(h, [.syn, .ack], seq: 5000, ack: 1001)
        c.deviceSends(h, .ack, seq: 1001, ack: 5001)
        let whole = segment(1000)
        let pieces = ipv4Fragments(whole, sizes: [512, 256])
        let batch = PacketBatch(capacity: 4)
        for k in [1, 2, 0] { batch.append(pieces[k]) }
        let generated = PacketBatch(capacity: 4, maxPacket: 2048)
        h.engine.process(batch, now: h.now, generated: generated)
        let written = (0..<batch.count).filter { !batch.dropped[$0] }
        #expect(written.count == 1)
        #expect(written.first.map { batch.bytes($0) } == c.towardServer(whole))
        #expect(h.engine.counters.datagramsReassembled == 1 && h.engine.counters.fragmentsReassembled == 3)
        #expect(h.engine.counters.totalDrops == 0)
        #expect(try DecodedTCP4(batch.bytes(written[0])).checksumsValid)
    }

    @Test("the engine: a lone piece waits, is not written, and is counted as given up after 15 s; a bad header checksum is a drop")
    func engineGivesUpAndChecks() {
        let h = EngineHarness(Lab.transparent())
        let pieces = ipv4Fragments(segment(1000), sizes: [512])
        var bad = pieces[1]
        bad[10] ^= 0x01
        let batch = PacketBatch(capacity: 4)
        batch.append(pieces[0])
        batch.append(bad)
        h.engine.process(batch, now: h.now, generated: PacketBatch(capacity: 4, maxPacket: 2048))
        #expect(batch.dropped[0] && batch.dropped[1])
        #expect(h.engine.fragmentsPending.datagrams == 1 && h.engine.counters[.badIPChecksum] == 1)
        h.advance(seconds: 16)
        h.expire()
        #expect(h.engine.fragmentsPending == (0, 0))
        #expect(h.engine.counters[.fragmentTimeout] == 1 && h.engine.counters.datagramsReassembled == 0)
    }
}
