@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The proxy's own packets carry the IP header of the end they speak for (`EndIPHeader`): the
/// TTL and DF that end's handshake showed, so a capture at the other end sees one sender per
/// connection (issue "Real-network TCP" item 11: they were TTL 64, DF set, always).
@Suite("Generated packets: the IP header of the end they speak for")
struct GeneratedPacketHeaderTests {
    typealias H = MigrationHarness
    let cut = 2 * 1448

    @Test("through a whole migration: in the laptop's name the laptop's TTL, in the server's the server's, after the splice the phone's")
    func ttlOfEachEnd() throws {
        let h = H.established(downloaded: cut, acked: cut)
        let (mid, paused) = try h.migrate()
        let freezeAck = try #require(paused.first { $0.destination == MigrationLab.server })
        let toLaptop = try #require(paused.first { $0.destination == MigrationLab.laptop })
        #expect(freezeAck.ttl == MigrationLab.laptopTTL && freezeAck.dontFragment && freezeAck.identification == 0)
        #expect(toLaptop.ttl == MigrationLab.serverTTL && toLaptop.dontFragment)
        _ = try h.timers() // the cut
        for o in h.serverSends(cut, cut + 2 * 1448, ack: 120) { #expect(o.verdict == .consumed) } // cached
        let (synAck, flight) = try h.phoneConnects(cut: cut)
        #expect(synAck.ttl == MigrationLab.serverTTL)
        #expect(!flight.isEmpty && flight.allSatisfy { $0.ttl == MigrationLab.serverTTL && $0.dontFragment }, "\(flight.map(\.ttl))")
        var phone = StreamReceiver()
        let last = try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(h.report(mid)?.phase == .spliced)
        let spliceAck = try #require(last.first { $0.destination == MigrationLab.server })
        #expect(spliceAck.ttl == MigrationLab.phoneTTL, "the server now hears the phone")
        let reset = try #require(last.first { $0.destination == MigrationLab.laptop && $0.flags.contains(.rst) })
        #expect(reset.ttl == MigrationLab.serverTTL)
    }

    @Test("a server without DF: the proxy's packets in its name go without DF, each with an IP ID of its own; the laptop's keep DF")
    func noDontFragment() throws {
        let h = MigrationHarness()
        h.serverDontFragment = false
        h.handshake()
        h.send(h.fromLaptop(at: 0, ack: 0, length: 120))
        for o in h.serverSends(0, cut, ack: 120) { #expect(o.verdict == .forward) }
        h.send(h.fromLaptop(at: 120, ack: cut))
        let (_, paused) = try h.migrate()
        let toLaptop = paused.filter { $0.destination == MigrationLab.laptop }
        let toServer = paused.filter { $0.destination == MigrationLab.server }
        #expect(!toLaptop.isEmpty && toLaptop.allSatisfy { !$0.dontFragment && $0.identification != 0 && $0.ttl == MigrationLab.serverTTL })
        #expect(!toServer.isEmpty && toServer.allSatisfy { $0.dontFragment && $0.ttl == MigrationLab.laptopTTL })
        _ = try h.timers()
        for o in h.serverSends(cut, cut + 2 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
        let (synAck, flight) = try h.phoneConnects(cut: cut)
        let ids = ([synAck] + flight).map(\.identification)
        #expect(([synAck] + flight).allSatisfy { !$0.dontFragment } && !ids.contains(0) && Set(ids).count == ids.count, "\(ids)")
    }
}
