@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// ECN and the IP TOS byte across a migration (issue "Real-network TCP" item 5): the new
/// device's SYN-ACK sets up ECN when the connection with the server uses it (RFC 3168 §6.1.1);
/// a new device that did not gets no CE marks it would never echo; the proxy's own segments
/// keep each direction's DSCP (RFC 2474) and split pieces keep the whole TOS byte, CE included.
@Suite("Migration: ECN and TOS")
struct MigrationECNTests {
    typealias H = MigrationHarness
    let cut = 2 * 1448
    static let ecn = EndOptions(ecn: true)

    func cutWithCache(_ h: H, cached: Int) throws -> MigrationID {
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        for o in h.serverSends(cut, cut + cached, ack: 120) { #expect(o.verdict == .consumed) }
        return mid
    }

    /// A segment from the server with its TOS byte set to `tos`.
    func fromServer(_ h: H, at offset: Int, length: Int, tos: UInt8) throws -> [UInt8] {
        var bytes = h.fromServer(at: offset, ack: 120, length: length)
        try withTCP4(&bytes) { $0.ip.setTOS(tos) }
        return bytes
    }

    @Test("the SYN-ACK sets ECE when the original connection and the new device use ECN, not otherwise",
          arguments: [(ecn, ecn, ecn, true), (ecn, ecn, EndOptions.linux, false), (EndOptions.linux, ecn, ecn, false),
                      (ecn, EndOptions.linux, ecn, false)])
    func synAckECE(_ laptop: EndOptions, _ server: EndOptions, _ phone: EndOptions, _ expected: Bool) throws {
        let h = H.established(downloaded: cut, acked: cut, laptop: laptop, server: server, phone: phone)
        _ = try cutWithCache(h, cached: 0)
        let (synAck, _) = try h.phoneConnects(cut: cut)
        #expect(synAck.flags.contains(.ece) == expected)
        #expect(!synAck.flags.contains(.cwr) && synAck.checksumsValid)
    }

    @Test("cached bytes reach the new device with the server's DSCP, Not-ECT; after the splice a CE mark reaches an ECN phone")
    func dscpOnGeneratedSegments() throws {
        let h = H.established(downloaded: cut, acked: cut, laptop: Self.ecn, server: Self.ecn, phone: Self.ecn)
        // The server's last segment before the migration: DSCP EF (46), ECT(0).
        #expect(h.send(try fromServer(h, at: cut, length: 0, tos: 0xB8 | 0x02)).verdict == .forward)
        let mid = try cutWithCache(h, cached: 2 * 1448)
        let (_, flight) = try h.phoneConnects(cut: cut)
        let data = flight.filter { $0.destination == MigrationLab.phone && !$0.payload.isEmpty }
        #expect(!data.isEmpty)
        #expect(data.allSatisfy { $0.tos == 0xB8 && $0.ipChecksumValid })
        var phone = StreamReceiver()
        _ = try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(h.report(mid)?.phase == .spliced)
        let marked = try h.send(try fromServer(h, at: cut + 2 * 1448, length: 100, tos: 0xB8 | 0x03)).decoded
        #expect(marked.tos == 0xB8 | 0x03 && marked.ipChecksumValid)
    }

    @Test("a new device without ECN gets the server's packets Not-ECT (a CE mark cleared), DSCP kept")
    func noECNOnTheNewDevice() throws {
        let h = H.established(downloaded: cut, acked: cut, laptop: Self.ecn, server: Self.ecn, phone: .linux)
        let mid = try cutWithCache(h, cached: 1448)
        let (_, flight) = try h.phoneConnects(cut: cut)
        var phone = StreamReceiver()
        _ = try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(h.report(mid)?.phase == .spliced)
        let out = try h.send(try fromServer(h, at: cut + 1448, length: 100, tos: 0x28 | 0x03)).decoded
        #expect(out.tos == 0x28 && out.ipChecksumValid && out.checksumsValid)
    }

    @Test("pieces of a segment split for a smaller-MSS device keep its TOS byte, CE included")
    func splitKeepsTOS() throws {
        let h = H.established(downloaded: cut, acked: cut, laptop: Self.ecn, server: Self.ecn, phone: EndOptions(mss: 1000, ecn: true))
        let mid = try cutWithCache(h, cached: 0)
        let (_, flight) = try h.phoneConnects(cut: cut)
        var phone = StreamReceiver()
        _ = try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(h.report(mid)?.phase == .spliced)
        let o = h.send(try fromServer(h, at: cut, length: 1448, tos: 0x28 | 0x03))
        let pieces = try o.packets()
        #expect(pieces.count == 2)
        #expect(pieces.allSatisfy { $0.tos == 0x28 | 0x03 && $0.checksumsValid })
    }
}
