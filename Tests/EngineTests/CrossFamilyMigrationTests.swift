@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Migration across address families (issue 12 item 3): in service mode a flow the laptop
/// started over IPv4 moves to a phone on an IPv6-only network, which connects to the service's
/// IPv6 address; the server's sub-connection stays IPv4. Every packet between the phone and
/// the server is sent again in the other family, byte-exact at the TCP layer, in pieces that
/// fit the IPv6 side's 20-byte longer header.
@Suite("Migration across address families")
struct CrossFamilyMigrationTests {
    static let vip4 = endpoint("10.9.9.9:80"), vip6 = endpoint("[fd00:9::9]:80")
    static let phone6 = endpoint("[fd00:3::2]:50000")

    /// The IPv4 lab with the service at both addresses, toward the IPv4 server.
    static func harness() -> MigrationHarness {
        let config = EngineConfig(nat: address("10.2.0.1"), nat6: address6("fd00:2::1"),
                                  services: [ServiceMapping(vip: vip4, target: MigrationLab.server),
                                             ServiceMapping(vip: vip6, target: MigrationLab.server)])
        let h = MigrationHarness(config: config)
        h.laptopTarget = vip4
        h.phone = phone6
        h.phoneTarget = vip6
        return h
    }

    @Test("a service's IPv6 address reaches its IPv4 server: the SYN leaves as IPv4 from the NAT address, the answer comes back as IPv6")
    func ipv6DeviceToIPv4Server() throws {
        let h = Self.harness()
        let syn = h.send(tcp4(src: Self.phone6, dst: Self.vip6, flags: .syn, seq: 100,
                              options: [.maximumSegmentSize(1440), .sackPermitted]))
        #expect(syn.verdict == .consumed)
        let out = try #require(try syn.packets().first)
        #expect(out.source.family == .ipv4 && out.destination == MigrationLab.server && out.source.address == .v4(address("10.2.0.1")))
        #expect(out.seq == SeqNumber(100) && out.maximumSegmentSize == 1440 && out.sackPermitted && out.checksumsValid)
        let back = h.send(tcp4(src: MigrationLab.server, dst: out.source, flags: [.syn, .ack], seq: 900, ack: 101,
                               options: [.maximumSegmentSize(1460)]))
        #expect(back.verdict == .consumed)
        let synAck = try #require(try back.packets().first)
        #expect(synAck.source == Self.vip6 && synAck.destination == Self.phone6 && synAck.ack == SeqNumber(101) && synAck.checksumsValid)
        // A full-size IPv4 segment reaches the IPv6 device in pieces of its MSS.
        h.send(tcp4(src: Self.phone6, dst: Self.vip6, seq: 101, ack: 901))
        let data = h.send(tcp4(src: MigrationLab.server, dst: out.source, flags: [.psh, .ack], seq: 901, ack: 101,
                               payload: serverBytes(0..<1460)))
        let pieces = try data.packets()
        #expect(pieces.map(\.payload.count) == [1440, 20] && pieces.allSatisfy { $0.checksumsValid && $0.destination == Self.phone6 })
        #expect(pieces.flatMap(\.payload) == serverBytes(0..<1460))
        #expect(h.engine.counters.packetsTranslated >= 4 && h.engine.counters.totalDrops == 0)
    }

    @Test("laptop (IPv4) -> phone (IPv6) -> laptop: both streams exact, the server's sub-connection IPv4 throughout")
    func thereAndBackAcrossFamilies() throws {
        let h = Self.harness()
        h.handshake()
        #expect(h.send(h.fromLaptop(at: 0, ack: 0, length: 120)).verdict == .forward)
        for o in h.serverSends(0, 2 * 1448, ack: 120) { #expect(o.verdict == .forward) }
        h.send(h.fromLaptop(at: 120, ack: 2 * 1448))

        // To the phone, which reaches the service over IPv6.
        let (r, _) = try h.startMigration(to: MigrationTarget(address: ipAddress("fd00:3::2")), settleWait: .milliseconds(100))
        let mid = try #require(try? r.get(), "refused: \(r)")
        h.send(h.fromServer(at: 2 * 1448, ack: 120))
        h.send(h.fromLaptop(at: 120, ack: 2 * 1448))
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .oldDeviceCut)
        let (synAck, flight) = try h.phoneConnects(cut: 2 * 1448)
        #expect(synAck.source == Self.vip6 && synAck.destination == Self.phone6 && synAck.checksumsValid)
        // The server's 1460 less the 20 bytes IPv6 adds: the phone's segments fit once IPv4.
        #expect(synAck.maximumSegmentSize == 1440)
        var phone = StreamReceiver()
        let last = try h.phoneDrains(flight, into: &phone, cut: 2 * 1448)
        #expect(h.report(mid)?.phase == .spliced)
        // The laptop's sub-connection ends with a RST from the address it talked to (IPv4).
        // (With nothing cached the splice comes with the phone's handshake ACK.)
        #expect((flight + last).contains { $0.destination == MigrationLab.laptop && $0.flags.contains(.rst) && $0.source == Self.vip4 })
        // The phone's data reaches the IPv4 server from the NAT address, in the laptop's stream.
        let up = try h.send(h.fromPhone(at: 0, ack: 2 * 1448, length: 100, streamBase: 120)).packets()
        let towardServer = try #require(up.first { $0.destination == MigrationLab.server })
        #expect(towardServer.source == MigrationLab.nat && towardServer.seq == SeqNumber(h.l(120)) && towardServer.checksumsValid)
        #expect(towardServer.payload == deviceBytes(120..<220))
        // The server's next bytes reach the phone as IPv6 from the service's IPv6 address.
        let down = try h.send(h.fromServer(at: 2 * 1448, ack: 220, length: 1448)).packets()
        #expect(!down.isEmpty && down.allSatisfy { $0.source == Self.vip6 && $0.destination == Self.phone6 && $0.checksumsValid })
        #expect(down.flatMap(\.payload) == serverBytes((2 * 1448)..<(3 * 1448)))
        #expect(h.summary?.device == Self.phone6 && h.summary?.original == Self.vip6 && h.summary?.server == MigrationLab.server)
        for d in down { phone.take(d, offset: h.serverOffset(d.seq)) }
        h.send(h.fromPhone(at: 100, ack: 3 * 1448, streamBase: 120))

        // Back to the laptop, from port 40001, over IPv4 to the service's IPv4 address.
        let laptop2 = endpoint("10.1.0.2:40001")
        let (r2, _) = try h.startMigration(to: MigrationTarget(address: laptop2.address, port: laptop2.port),
                                           settleWait: .milliseconds(100))
        let m2 = try #require(try? r2.get(), "refused: \(r2)")
        _ = try h.timers()
        let cut2 = try #require(h.report(m2))
        #expect(cut2.phase == .oldDeviceCut && cut2.oldDevice == Self.phone6)
        #expect(cut2.cutOffsetToDevice == UInt64(3 * 1448) && cut2.cutOffsetToServer == 220)
        for o in h.serverSends(3 * 1448, 4 * 1448, ack: 220) { #expect(o.verdict == .consumed) }
        h.phone = laptop2
        h.phoneTarget = Self.vip4
        h.phoneISN = 9_000_000
        let (synAck2, flight2) = try h.phoneConnects(cut: 3 * 1448)
        #expect(synAck2.source == Self.vip4 && synAck2.maximumSegmentSize == 1460 && synAck2.checksumsValid)
        var laptop = StreamReceiver()
        let last2 = try h.phoneDrains(flight2, into: &laptop, cut: 3 * 1448)
        #expect(h.report(m2)?.phase == .spliced)
        #expect((flight2 + last2).contains { $0.destination == Self.phone6 && $0.flags.contains(.rst) && $0.source == Self.vip6 })
        #expect(difference(laptop.stream(3 * 1448, 4 * 1448), serverBytes((3 * 1448)..<(4 * 1448))) == nil)
        #expect(difference(phone.stream(2 * 1448, 3 * 1448), serverBytes((2 * 1448)..<(3 * 1448))) == nil)
        // Same family on both sides again: packets are rewritten in place, not sent again.
        let translated = h.engine.counters.packetsTranslated
        let up2 = h.send(h.fromPhone(at: 0, ack: 4 * 1448, length: 10, streamBase: 220))
        #expect(up2.verdict == .forward)
        let d2 = try up2.decoded
        #expect(d2.source == MigrationLab.nat && d2.destination == MigrationLab.server && d2.seq == SeqNumber(h.l(220)))
        #expect(h.engine.counters.packetsTranslated == translated)
        #expect(h.summary?.device == laptop2 && h.summary?.original == Self.vip4)
        #expect(h.engine.counters.totalDrops == 0 && h.engine.counters.generatedOverflow == 0)
    }

    @Test("in transparent mode a device of the other family cannot take the flow (it would need the server's own address): refused, nothing changes")
    func transparentRefused() throws {
        let h = MigrationHarness.established()
        let (r, generated) = try h.startMigration(to: MigrationTarget(address: ipAddress("fd00:3::2")))
        guard case .failure(.unsupported(_, let why)) = r else {
            Issue.record("not refused: \(r)")
            return
        }
        #expect(why.contains("IPv6") && why.contains("service"))
        #expect(generated.isEmpty && h.engine.activeMigrationCount == 0)
    }
}
