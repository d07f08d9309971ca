@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Issue "Real-network TCP" item 6: a new device without timestamps while the connection with
/// the server negotiated them. Its segments used to reach the server without the option,
/// which RFC 7323 §3.2 lets a receiver drop; now the proxy adds it in the device's name.
@Suite("Migration: a new device without timestamps")
struct MigrationTimestampSynthesisTests {
    typealias H = MigrationHarness
    let cut = 2 * 1448
    let cached = 3 * 1448

    /// Laptop (timestamps) -> phone (none), spliced; returns the last TSval the server saw
    /// before the migration.
    func splicedToPhoneWithoutTimestamps(_ h: H) throws -> (synAck: DecodedTCP4, lastTSval: UInt32) {
        let lastTSval = h.laptopClock &- 1
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        for o in h.serverSends(cut, cut + cached, ack: 120) { #expect(o.verdict == .consumed) }
        let (synAck, flight) = try h.phoneConnects(cut: cut)
        var phone = StreamReceiver()
        try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(h.report(mid)?.phase == .spliced)
        return (synAck, lastTSval)
    }

    @Test("its SYN-ACK offers the server's MSS less the option; after the splice its segments reach the server with a timestamp going on from the last TSval, echoing the server's")
    func synthesizedAfterSplice() throws {
        let h = H.established(downloaded: cut, acked: cut, phone: EndOptions(timestamps: false))
        let (synAck, last) = try splicedToPhoneWithoutTimestamps(h)
        #expect(synAck.timestamp == nil)
        #expect(synAck.options.contains(.maximumSegmentSize(1460 - 12)))
        h.advance(milliseconds: 5)
        let out = h.send(h.fromPhone(at: 0, ack: cut + cached, length: 100, streamBase: 120))
        #expect(out.verdict == .consumed)
        let seg = try #require(try out.packets().first)
        #expect(seg.destination == MigrationLab.server && seg.source.address == MigrationLab.nat.address)
        #expect(seg.seq == SeqNumber(h.l(120)) && seg.ack == SeqNumber(h.s(cut + cached)))
        #expect(seg.payload.count == 100 && seg.checksumsValid)
        let ts = try #require(seg.timestamp)
        #expect(ts.echoReply == h.serverClock &- 1)
        #expect((ts.value &- last) >= 1 && (ts.value &- last) < 1000)
        // It ticks with the clock (1 kHz) and never goes back.
        h.advance(milliseconds: 10)
        let next = try #require(try h.send(h.fromPhone(at: 100, ack: cut + cached)).packets().first?.timestamp)
        #expect(next.value &- ts.value == 10)
        #expect(h.engine.counters.timestampsSynthesized == 2)
    }

    @Test("a segment longer than the server's MSS less the option is cut; FIN and PSH only on the last piece; SACK blocks go along, at most 3")
    func piecesAndSACK() throws {
        let h = H.established(downloaded: cut, acked: cut, phone: EndOptions(timestamps: false))
        _ = try splicedToPhoneWithoutTimestamps(h)
        let big = try h.send(h.fromPhone([.ack, .fin], at: 0, ack: cut + cached, length: 3000, streamBase: 120)).packets()
        #expect(big.map(\.payload.count) == [1448, 1448, 104])
        #expect(big.map { $0.flags.contains(.fin) } == [false, false, true])
        #expect(big.allSatisfy { $0.timestamp != nil && $0.checksumsValid && $0.ipLength <= 1500 })
        let blocks = [(cut + cached + 1000, cut + cached + 2000), (cut + cached + 3000, cut + cached + 4000),
                      (cut + cached + 5000, cut + cached + 6000), (cut + cached + 7000, cut + cached + 8000)]
        let sacked = try #require(try h.send(h.fromPhone(at: 3000, ack: cut + cached, sack: blocks)).packets().first)
        #expect(sacked.timestamp != nil && sacked.sackBlocks.count == 3 && sacked.checksumsValid)
    }

    @Test("a RST goes as it is; a phone with timestamps gets none added")
    func resetAndTimestampedPhone() throws {
        let h = H.established(downloaded: cut, acked: cut, phone: EndOptions(timestamps: false))
        _ = try splicedToPhoneWithoutTimestamps(h)
        #expect(h.send(h.fromPhone(.rst, at: 0, ack: cut + cached)).verdict == .forward)
        let plain = H.established(downloaded: cut, acked: cut)
        _ = try splicedToPhoneWithoutTimestamps(plain)
        #expect(plain.send(plain.fromPhone(at: 0, ack: cut + cached, length: 10, streamBase: 120)).verdict == .forward)
        #expect(plain.engine.counters.timestampsSynthesized == 0)
    }

    @Test("the next migration starts from the last synthesized TSval, so a device with timestamps after it continues above it")
    func nextMigrationContinues() throws {
        let h = H.established(downloaded: cut, acked: cut, phone: EndOptions(timestamps: false))
        _ = try splicedToPhoneWithoutTimestamps(h)
        h.advance(milliseconds: 50)
        let sent = try #require(try h.send(h.fromPhone(at: 0, ack: cut + cached, length: 10, streamBase: 120)).packets().first?.timestamp)
        h.advance(milliseconds: 50)
        let (r, _) = try h.startMigration(to: MigrationTarget(address: MigrationLab.laptop.address))
        let mid = try r.get()
        let freeze = try #require(h.engine.migrations[mid]?.freeze)
        // The server's TS.Recent is the last value it got; the pause starts there, whatever the clock says.
        #expect(freeze.lastTSvalToServer == sent.value)
    }
}
