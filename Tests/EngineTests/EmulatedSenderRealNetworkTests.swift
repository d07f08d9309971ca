@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Issue 13 item 8, packet by packet with the injected clock: the emulated sender draining
/// the cache to the phone meets a slow reader's window updates, reordered acks, a window
/// that closes with data in flight, and SACK from the phone.
@Suite("Migration: emulated sender on a real network")
struct EmulatedSenderRealNetworkTests {
    typealias H = MigrationHarness
    /// Where the flows of these tests are cut: the laptop acknowledged two segments.
    let cut = 2 * 1448
    let cached = 20 * 1448
    /// Stream offset of the `k`th segment of the drain.
    func seg(_ k: Int) -> Int { cut + k * 1448 }

    /// Established, paused and cut at `cut`; the server's `cached` bytes in flight cached; the
    /// phone connected and sent the first flight (10 segments).
    func draining(sourceLocation: SourceLocation = #_sourceLocation) throws -> (H, MigrationID, [DecodedTCP4]) {
        let h = H.established(downloaded: cut, acked: cut)
        let (mid, _) = try h.migrate(sourceLocation: sourceLocation)
        _ = try h.timers()
        for o in h.serverSends(cut, cut + cached, ack: 120) { #expect(o.verdict == .consumed, sourceLocation: sourceLocation) }
        let (_, flight) = try h.phoneConnects(cut: cut, sourceLocation: sourceLocation)
        #expect(flight.count == 10, sourceLocation: sourceLocation)
        return (h, mid, flight)
    }

    /// The phone takes `queue` and whatever follows until the splice; the stream must be whole.
    func drainToSplice(_ h: H, _ mid: MigrationID, _ queue: [DecodedTCP4], _ phone: inout StreamReceiver, phoneAt: Int = 0,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        try h.phoneDrains(queue, into: &phone, cut: cut, phoneAt: phoneAt, sourceLocation: sourceLocation)
        #expect(difference(phone.stream(cut, cut + cached), serverBytes(cut..<(cut + cached))) == nil,
                sourceLocation: sourceLocation)
        #expect(h.report(mid)?.phase == .spliced, sourceLocation: sourceLocation)
    }

    @Test("a slow reader's window updates (same ack, growing window) cause no fast retransmit (RFC 5681 §2)")
    func windowUpdatesAreNoDuplicateAcks() throws {
        let (h, mid, flight) = try draining()
        var phone = StreamReceiver()
        phone.take(flight[0], offset: cut)
        let more = try h.send(h.fromPhone(at: 0, ack: seg(1))).packets()
        #expect(more.count == 2)
        // Its application reads slowly: four window updates while segments 1.. are still on the way.
        var resent: [DecodedTCP4] = []
        for w in UInt16(503)...506 {
            resent += h.segmentsToPhone(try h.send(h.fromPhone(at: 0, ack: seg(1), window: w)).packets())
        }
        #expect(resent.isEmpty)
        #expect(h.report(mid)?.retransmissions == 0)
        #expect(h.sender?.cwnd == 11 * 1448 && h.sender?.ssthresh == Int.max)
        #expect(h.sender?.peerWindow == 506 << 7)
        for s in flight[1...] + more { phone.take(s, offset: h.serverOffset(s.seq)) }
        let next = try h.send(h.fromPhone(at: 0, ack: phone.expected(from: cut))).packets()
        try drainToSplice(h, mid, next, &phone)
        #expect(h.report(mid)?.retransmissions == 0 && h.report(mid)?.timeouts == 0)
    }

    @Test("reordered phone segments: an older one (same ack, earlier seq; or an older ack) leaves the window (RFC 9293 §3.10.7.4)")
    func reorderedAcksKeepWindow() throws {
        let (h, mid, flight) = try draining()
        // The phone sent 100 bytes with window 0 (its buffer full), then read and sent a pure
        // ack with its window open again; the network delivers them in the other order.
        var pending: [DecodedTCP4] = []
        let newer = h.send(h.fromPhone(at: 100, ack: seg(1), window: 502))
        #expect(newer.verdict == .consumed)
        pending += h.segmentsToPhone(try newer.packets())
        let older = h.send(h.fromPhone(at: 0, ack: seg(1), length: 100, window: 0, streamBase: 120))
        #expect(older.verdict == .forward)
        pending += h.segmentsToPhone(try older.packets())
        #expect(h.sender?.peerWindow == 502 << 7)
        // An ack overtaken by a later one: its smaller ack and closed window are stale.
        pending += h.segmentsToPhone(try h.send(h.fromPhone(at: 100, ack: seg(3))).packets())
        let stale = h.send(h.fromPhone(at: 100, ack: seg(2), window: 0))
        #expect(stale.verdict == .consumed && stale.generated.isEmpty)
        #expect(h.sender?.peerWindow == 502 << 7)
        #expect(h.sender?.una == SeqNumber(h.s(seg(3))))
        // The drain goes on and ends in the splice.
        var phone = StreamReceiver()
        for s in flight[..<3] { phone.take(s, offset: h.serverOffset(s.seq)) }
        try drainToSplice(h, mid, Array(flight[3...]) + pending, &phone, phoneAt: 100)
        #expect(h.report(mid)?.timeouts == 0)
    }

    @Test("the phone's window closes with segments in flight: persist probes, no timeout, cwnd kept (RFC 9293 §3.8.6.1)")
    func zeroWindowWithDataInFlightIsNoLoss() throws {
        let (h, mid, flight) = try draining()
        var phone = StreamReceiver()
        // It takes five segments and closes its window (it drops the other five).
        for s in flight[..<5] { phone.take(s, offset: h.serverOffset(s.seq)) }
        #expect(try h.send(h.fromPhone(at: 0, ack: seg(5), window: 0)).packets().isEmpty)
        let cwnd = try #require(h.sender?.cwnd)
        // The timer (RTO 200 ms) probes the window with one byte at the ack; no timeout.
        h.advance(milliseconds: 199)
        #expect(try h.timers().isEmpty)
        h.advance(milliseconds: 1)
        let probe = h.segmentsToPhone(try h.timers())
        #expect(probe.map(\.seq) == [SeqNumber(h.s(seg(5)))] && probe.first?.payload.count == 1)
        #expect(h.report(mid)?.timeouts == 0)
        #expect(h.sender?.cwnd == cwnd && h.sender?.ssthresh == Int.max)
        // No answer (the probe's ack was lost): the next probe twice as late; still no loss.
        h.advance(milliseconds: 399)
        #expect(try h.timers().isEmpty)
        h.advance(milliseconds: 1)
        #expect(h.segmentsToPhone(try h.timers()).map(\.payload.count) == [1])
        #expect(h.report(mid)?.timeouts == 0)
        #expect(h.sender?.cwnd == cwnd && h.sender?.ssthresh == Int.max)
        // It reads: the window opens and the whole cwnd goes again from its ack.
        let opened = h.segmentsToPhone(try h.send(h.fromPhone(at: 0, ack: seg(5))).packets())
        #expect(opened.count == cwnd / 1448 && opened.first?.seq == SeqNumber(h.s(seg(5))))
        try drainToSplice(h, mid, opened, &phone)
        #expect(h.report(mid)?.timeouts == 0)
    }

    @Test("SACK from the phone: recovery resends each hole once, as soon as SACK shows it, never SACKed bytes (RFC 6675)")
    func sackRecoveryResendsOnlyHoles() throws {
        let (h, mid, flight) = try draining()
        var phone = StreamReceiver()
        phone.take(flight[0], offset: cut)
        let more = h.segmentsToPhone(try h.send(h.fromPhone(at: 0, ack: seg(1))).packets())
        #expect(more.count == 2)
        // Segments 1 and 3 are lost; 2 and 4..11 arrive, each answered with SACK blocks.
        var resent: [DecodedTCP4] = []
        var newData: [DecodedTCP4] = []
        for k in [2, 4, 5, 6, 7, 8, 9, 10, 11] {
            let s = k < 10 ? flight[k] : more[k - 10]
            phone.take(s, offset: h.serverOffset(s.seq))
            let sack = k == 2 ? [(seg(2), seg(3))] : [(seg(4), seg(k + 1)), (seg(2), seg(3))]
            for out in h.segmentsToPhone(try h.send(h.fromPhone(at: 0, ack: seg(1), sack: sack)).packets()) {
                if h.serverOffset(out.seq) < seg(12) { resent.append(out) } else { newData.append(out) }
            }
            // Segment 1 goes again once three segments are SACKed; segment 3 with the next ack.
            if k == 5 { #expect(resent.map { h.serverOffset($0.seq) } == [seg(1)]) }
            if k == 6 { #expect(resent.map { h.serverOffset($0.seq) } == [seg(1), seg(3)]) }
        }
        #expect(resent.map { h.serverOffset($0.seq) } == [seg(1), seg(3)])
        #expect(h.report(mid)?.retransmissions == 2)
        try #require(resent.count == 2)
        // The resent segment 1 arrives: a partial ack; segment 3 went already, nothing goes again.
        phone.take(resent[0], offset: seg(1))
        #expect(phone.expected(from: cut) == seg(3))
        let partial = h.segmentsToPhone(try h.send(h.fromPhone(at: 0, ack: seg(3), sack: [(seg(4), seg(12))])).packets())
        #expect(!partial.contains { h.serverOffset($0.seq) < seg(12) })
        // The resent segment 3: everything up to segment 12 acknowledged; the rest drains.
        phone.take(resent[1], offset: seg(3))
        #expect(phone.expected(from: cut) == seg(12))
        let full = try h.send(h.fromPhone(at: 0, ack: seg(12))).packets()
        try drainToSplice(h, mid, newData + partial + full, &phone)
        #expect(h.report(mid)?.retransmissions == 2 && h.report(mid)?.timeouts == 0)
    }
}
