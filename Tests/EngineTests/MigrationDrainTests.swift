@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// DESIGN §6 step 4: the emulated sender drains the cache to the new device: slow start from
/// an initial window of 10 (RFC 5681 §3.1, RFC 6928) within the phone's window, fast
/// retransmit after three duplicate ACKs (RFC 5681 §3.2), the RTO with exponential backoff
/// (RFC 6298 §5), persist probes on a zero window; server bytes that arrive late join the drain.
extension MigrationResumeTests {
    @Test("drain: MSS-sized segments from the cut, initial window 10, slow start, never more than the phone's window")
    func drainSlowStartAndWindow() throws {
        let h = established()
        let cached = 40 * 1448
        let mid = try cutWithCache(h, cached: cached)
        let (_, flight) = try h.phoneConnects(cut: cut)
        #expect(h.report(mid)?.phase == .newDeviceConnected)
        #expect(flight.count == 10)
        for (i, seg) in flight.enumerated() {
            let at = cut + i * 1448
            #expect(seg.source == MigrationLab.server && seg.destination == MigrationLab.phone)
            #expect(seg.seq == SeqNumber(h.s(at)))
            #expect(seg.ack == SeqNumber(h.p(0)))
            #expect(seg.flags.contains(.ack) && !seg.flags.contains(.fin))
            #expect(difference(seg.payload, serverBytes(at..<(at + 1448))) == nil)
            #expect(seg.window == 509)
            #expect(seg.timestamp! == (h.serverClock &- 1, h.phoneClock &- 1))
            #expect(seg.ipLength <= 1500) // MSS 1460 less the 12 bytes of the timestamp option
            #expect(seg.checksumsValid)
        }
        // One segment acknowledged: cwnd 11, two new segments.
        let a1 = try h.send(h.fromPhone(at: 0, ack: cut + 1448)).packets()
        #expect(a1.map(\.seq) == [SeqNumber(h.s(cut + 10 * 1448)), SeqNumber(h.s(cut + 11 * 1448))])
        // Two more in one ack: cwnd 12, 9 in flight: three new.
        let a2 = try h.send(h.fromPhone(at: 0, ack: cut + 3 * 1448)).packets()
        #expect(a2.count == 3)
        #expect(h.sender?.cwnd == 12 * 1448)
        // The phone's window shrinks to 20 << 7 = 2560 bytes: nothing more while 12 segments are out.
        let a3 = try h.send(h.fromPhone(at: 0, ack: cut + 4 * 1448, window: 20)).packets()
        #expect(a3.isEmpty)
        // Everything acknowledged, window still 2560: one segment (no silly second one).
        let a4 = try h.send(h.fromPhone(at: 0, ack: cut + 15 * 1448, window: 20)).packets()
        #expect(a4.count == 1 && a4.first?.payload.count == 1448)
        // The window opens again: the rest drains; every byte arrives once and in order.
        var phone = StreamReceiver()
        for seg in flight + a1 + a2 + a4 { phone.take(seg, offset: h.serverOffset(seg.seq)) }
        let last = try h.phoneDrains(try h.send(h.fromPhone(at: 0, ack: cut + 16 * 1448)).packets(), into: &phone, cut: cut)
        #expect(difference(phone.stream(cut, cut + cached), serverBytes(cut..<(cut + cached))) == nil)
        #expect(phone.expected(from: cut) == cut + cached)
        #expect(last.count == 2) // the splice's ACK and RST
        let report = try #require(h.report(mid))
        #expect(report.phase == .spliced)
        #expect(report.bytesCached == UInt64(cached))
        #expect(report.retransmissions == 0 && report.timeouts == 0)
    }

    @Test("a lost segment is retransmitted after three duplicate acks (fast retransmit)")
    func fastRetransmit() throws {
        let h = established()
        let cached = 20 * 1448
        let mid = try cutWithCache(h, cached: cached)
        let (_, flight) = try h.phoneConnects(cut: cut)
        #expect(flight.count == 10)
        var phone = StreamReceiver()
        // Segment 1 is lost; 0, 2, 3, 4 arrive.
        phone.take(flight[0], offset: cut)
        let more = try h.send(h.fromPhone(at: 0, ack: cut + 1448)).packets()
        #expect(more.count == 2)
        var retransmitted: [DecodedTCP4] = []
        for k in 2...4 {
            phone.take(flight[k], offset: cut + k * 1448)
            let o = h.send(h.fromPhone(at: 0, ack: cut + 1448, sack: [(cut + 2 * 1448, cut + (k + 1) * 1448)]))
            #expect(o.verdict == .consumed)
            retransmitted += h.segmentsToPhone(try o.packets())
            if k < 4 { #expect(retransmitted.isEmpty) }
        }
        #expect(retransmitted.count == 1)
        let again = try #require(retransmitted.first)
        #expect(again.seq == SeqNumber(h.s(cut + 1448)))
        #expect(difference(again.payload, serverBytes((cut + 1448)..<(cut + 2 * 1448))) == nil)
        #expect(h.report(mid)?.retransmissions == 1)
        #expect(h.report(mid)?.timeouts == 0)
        // The rest arrives; the retransmission fills the hole; everything drains.
        for seg in flight[5...] + more { phone.take(seg, offset: h.serverOffset(seg.seq)) }
        try h.phoneDrains([again], into: &phone, cut: cut)
        #expect(difference(phone.stream(cut, cut + cached), serverBytes(cut..<(cut + cached))) == nil)
        #expect(h.report(mid)?.phase == .spliced)
    }

    @Test("a lost flight is retransmitted on the RTO with exponential backoff; acks past the resent segment are taken")
    func retransmissionTimeout() throws {
        let h = established()
        let cached = 20 * 1448
        let mid = try cutWithCache(h, cached: cached)
        let (_, flight) = try h.phoneConnects(cut: cut)
        #expect(flight.count == 10)
        // Nothing arrives: after the initial RTO (1 s), the first segment again.
        h.advance(milliseconds: 999)
        #expect(try h.timers().isEmpty)
        h.advance(milliseconds: 1)
        let first = h.segmentsToPhone(try h.timers())
        #expect(first.count == 1)
        #expect(first.first?.seq == SeqNumber(h.s(cut)))
        #expect(difference(first.first?.payload, serverBytes(cut..<(cut + 1448))) == nil)
        #expect(h.report(mid)?.timeouts == 1)
        // Backed off to 2 s.
        h.advance(milliseconds: 1999)
        #expect(try h.timers().isEmpty)
        h.advance(milliseconds: 1)
        let second = h.segmentsToPhone(try h.timers())
        #expect(second.map(\.seq) == [SeqNumber(h.s(cut))])
        #expect(h.report(mid)?.timeouts == 2 && h.report(mid)?.retransmissions == 2)
        // Only the first flight's segment 0 had been lost: the phone acknowledges all ten.
        var phone = StreamReceiver()
        for seg in flight[1...] { phone.take(seg, offset: h.serverOffset(seg.seq)) }
        phone.take(second[0], offset: cut)
        let resumed = try h.send(h.fromPhone(at: 0, ack: phone.expected(from: cut))).packets()
        #expect(resumed.map(\.seq) == [SeqNumber(h.s(cut + 10 * 1448)), SeqNumber(h.s(cut + 11 * 1448))])
        try h.phoneDrains(resumed, into: &phone, cut: cut)
        #expect(difference(phone.stream(cut, cut + cached), serverBytes(cut..<(cut + cached))) == nil)
        #expect(h.report(mid)?.phase == .spliced)
        #expect(h.report(mid)?.timeouts == 2)
    }

    @Test("the new device's window is zero: persist-timer probes, then the drain when it opens")
    func phoneZeroWindow() throws {
        let h = established()
        let mid = try cutWithCache(h, cached: 3 * 1448)
        _ = h.send(h.phoneSyn())
        let ack = try h.send(h.fromPhone(at: 0, ack: cut, window: 0)).packets()
        #expect(ack.isEmpty)
        h.advance(milliseconds: 1000)
        let probe = h.segmentsToPhone(try h.timers())
        #expect(probe.count == 1 && probe.first?.payload.count == 1 && probe.first?.seq == SeqNumber(h.s(cut)))
        #expect(h.report(mid)?.timeouts == 0)
        var phone = StreamReceiver()
        phone.take(probe[0], offset: cut)
        let opened = try h.send(h.fromPhone(at: 0, ack: cut + 1)).packets()
        #expect(opened.first?.seq == SeqNumber(h.s(cut + 1)))
        try h.phoneDrains(opened, into: &phone, cut: cut)
        #expect(difference(phone.stream(cut, cut + 3 * 1448), serverBytes(cut..<(cut + 3 * 1448))) == nil)
        #expect(h.report(mid)?.phase == .spliced)
    }

    @Test("server bytes cached after the drain started (late in flight) reach the new device before the splice")
    func lateServerBytes() throws {
        let h = established()
        let mid = try cutWithCache(h, cached: 2 * 1448)
        let (_, flight) = try h.phoneConnects(cut: cut)
        #expect(flight.count == 2)
        // One more segment of the server's last flight arrives now: cached and pre-acked.
        let late = h.send(h.fromServer(at: cut + 2 * 1448, ack: 120, length: 1448))
        #expect(late.verdict == .consumed)
        let out = try late.packets()
        #expect(out.contains { $0.destination == MigrationLab.server && $0.ack == SeqNumber(h.s(cut + 3 * 1448)) && $0.window == 0 })
        var phone = StreamReceiver()
        try h.phoneDrains(flight + h.segmentsToPhone(out), into: &phone, cut: cut)
        #expect(difference(phone.stream(cut, cut + 3 * 1448), serverBytes(cut..<(cut + 3 * 1448))) == nil)
        let report = try #require(h.report(mid))
        #expect(report.phase == .spliced)
        #expect(report.bytesCached == UInt64(3 * 1448))
        // The server's next byte goes straight to the phone: nothing was acknowledged and lost.
        let next = h.send(h.fromServer(at: cut + 3 * 1448, ack: 120, length: 100))
        #expect(next.verdict == .forward)
        #expect(try next.decoded.seq == SeqNumber(h.s(cut + 3 * 1448)))
    }
}
