@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// DESIGN §6 steps 4-5, packet by packet: the new device's handshake with the proxy, the
/// emulated sender draining the cache (slow start, window, fast retransmit, RTO), the splice,
/// and plain forwarding with the new offsets afterwards.
@Suite("Migration: new device, drain, splice")
struct MigrationResumeTests {
    typealias H = MigrationHarness
    /// Where the flows of these tests are cut: the laptop acknowledged two segments.
    let cut = 2 * 1448

    /// Established, laptop caught up at `cut`; paused and cut; then the server's bytes in
    /// flight (`cached` of them) arrive and are cached.
    func cutWithCache(_ h: H, cached: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> MigrationID {
        let (mid, _) = try h.migrate(sourceLocation: sourceLocation)
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .oldDeviceCut, sourceLocation: sourceLocation)
        for o in h.serverSends(cut, cut + cached, ack: 120) { #expect(o.verdict == .consumed, sourceLocation: sourceLocation) }
        return mid
    }

    func established(phone: EndOptions = .linux, laptop: EndOptions = .linux, server: EndOptions = .linux) -> H {
        H.established(downloaded: cut, acked: cut, laptop: laptop, server: server, phone: phone)
    }

    // MARK: The new device's handshake

    @Test("the new device's SYN is claimed; the SYN-ACK comes only after the cut, at cut - 1; a retransmitted SYN gets it again")
    func synClaimedSynAckAfterCut() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(settleWait: .seconds(5))
        let syn = h.send(h.phoneSyn())
        #expect(syn.verdict == .consumed && syn.generated.isEmpty)
        #expect(h.report(mid)?.newDevice == MigrationLab.phone)
        #expect(h.engine.flowCount == 1) // no flow of its own
        let again = h.send(h.phoneSyn())
        #expect(again.verdict == .consumed && again.generated.isEmpty)
        // The laptop catches up: the cut is made and the SYN-ACK goes out.
        let caughtUp = h.send(h.fromLaptop(at: 120, ack: 4 * 1448))
        #expect(caughtUp.verdict == .consumed)
        let out = try caughtUp.packets()
        #expect(out.count == 1)
        let synAck = try #require(out.first)
        #expect(synAck.source == MigrationLab.server && synAck.destination == MigrationLab.phone)
        #expect(synAck.flags == [.syn, .ack])
        #expect(synAck.seq == SeqNumber(h.s(4 * 1448) &- 1))
        #expect(synAck.ack == SeqNumber(h.phoneISN &+ 1))
        #expect(synAck.maximumSegmentSize == 1460 && synAck.sackPermitted && synAck.windowScale == 7)
        #expect(synAck.timestamp! == (h.serverClock &- 1, h.phoneClock &- 1))
        #expect(synAck.checksumsValid)
        // A retransmitted SYN: the same SYN-ACK.
        let third = try h.send(h.phoneSyn()).packets()
        #expect(third.count == 1)
        #expect(third.first?.seq == synAck.seq && third.first?.ack == synAck.ack && third.first?.flags == [.syn, .ack])
        // A SYN from another address, or to another destination, is not claimed.
        let stranger = h.send(tcp4(src: endpoint("10.4.0.2:50000"), dst: MigrationLab.server, flags: .syn, seq: 1,
                                   options: EndOptions.linux.syn(tsval: 1)))
        #expect(stranger.verdict == .forward)
        #expect(h.engine.flowCount == 2)
    }

    @Test("a lost handshake ACK: the SYN-ACK goes again after 1 s, then 2 s; the ACK then connects the new device")
    func synAckRetransmitted() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 4 * 1448)
        let cut = 4 * 1448
        let (mid, _) = try h.migrate()
        _ = try h.timers() // settled: the cut
        let first = try #require(try h.send(h.phoneSyn()).packets().first { $0.flags == [.syn, .ack] })
        // The phone's ACK is lost; it waits silently (established on its side).
        h.advance(milliseconds: 900)
        #expect(try h.timers().filter { $0.flags.contains(.syn) }.isEmpty)
        h.advance(milliseconds: 150)
        let again = try h.timers().filter { $0.flags.contains(.syn) }
        #expect(again.count == 1 && again.first?.seq == first.seq && again.first?.ack == first.ack)
        h.advance(milliseconds: 1500)
        #expect(try h.timers().filter { $0.flags.contains(.syn) }.isEmpty)
        h.advance(milliseconds: 600)
        #expect(try h.timers().filter { $0.flags.contains(.syn) }.count == 1)
        #expect(h.report(mid)?.phase == .oldDeviceCut)
        // Its answer to the repeated SYN-ACK completes the handshake.
        #expect(h.send(h.fromPhone(at: 0, ack: cut)).verdict == .consumed)
        #expect(h.report(mid)?.phase == .spliced || h.report(mid)?.phase == .newDeviceConnected || h.report(mid)?.phase == .cacheDrained)
        h.advance(milliseconds: 10_000)
        #expect(try h.timers().filter { $0.flags.contains(.syn) }.isEmpty)
    }

    @Test("a target port limits the claim to that source port")
    func targetPort() throws {
        let h = established()
        _ = try h.startMigration(to: MigrationTarget(address: MigrationLab.phoneAddress, port: 50001))
        #expect(h.send(h.phoneSyn()).verdict == .forward) // port 50000: a flow of its own
        #expect(h.engine.flowCount == 2)
        let right = h.send(tcp4(src: endpoint("10.3.0.2:50001"), dst: MigrationLab.server, flags: .syn, seq: 5,
                                options: EndOptions.linux.syn(tsval: 1)))
        #expect(right.verdict == .consumed)
    }

    @Test("a target awaiting its port claims no SYN until the port is bound, then only that port's")
    func awaitedPort() throws {
        let h = established()
        let (r, _) = try h.startMigration(to: MigrationTarget(address: MigrationLab.phoneAddress, awaitsPort: true))
        let mid = try r.get()
        #expect(h.send(h.phoneSyn()).verdict == .forward) // nothing bound yet: a flow of its own
        #expect(h.engine.flowCount == 2)
        #expect(refusal(h.engine.bindMigrationSourcePort(50001, to: MigrationID(999))) == .unknownMigration(MigrationID(999)))
        try h.engine.bindMigrationSourcePort(50001, to: mid).get()
        #expect(h.report(mid)?.target == MigrationTarget(address: MigrationLab.phoneAddress, port: 50001))
        let right = h.send(tcp4(src: endpoint("10.3.0.2:50001"), dst: MigrationLab.server, flags: .syn, seq: 5,
                                options: EndOptions.linux.syn(tsval: 1)))
        #expect(right.verdict == .consumed)
        // Claimed: the port can't change any more.
        #expect(refusal(h.engine.bindMigrationSourcePort(50002, to: mid)) == .tooLate(mid, h.report(mid)!.phase))
    }

    private func refusal(_ r: Result<Void, MigrationRefusal>) -> MigrationRefusal? {
        if case .failure(let why) = r { return why }
        return nil
    }

    struct OptionCase: Sendable, CustomTestStringConvertible {
        var name: String
        var laptop: EndOptions
        var server: EndOptions
        var phone: EndOptions
        var mss: UInt16
        var sack: Bool
        var timestamps: Bool
        var windowScale: UInt8?
        var testDescription: String { name }
    }

    static let optionCases: [OptionCase] = [
        OptionCase(name: "all Linux", laptop: .linux, server: .linux, phone: .linux,
                   mss: 1460, sack: true, timestamps: true, windowScale: 7),
        // 12 bytes less: the proxy adds the timestamp option to its segments toward the server.
        OptionCase(name: "phone without timestamps and window scaling", laptop: .linux, server: .linux, phone: .plain,
                   mss: 1448, sack: true, timestamps: false, windowScale: nil),
        OptionCase(name: "original without timestamps and window scaling", laptop: .plain, server: .plain, phone: .linux,
                   mss: 1460, sack: true, timestamps: false, windowScale: nil),
        OptionCase(name: "phone without SACK", laptop: .linux, server: .linux, phone: EndOptions(sack: false),
                   mss: 1460, sack: false, timestamps: true, windowScale: 7),
        OptionCase(name: "original without SACK", laptop: EndOptions(sack: false), server: .linux, phone: .linux,
                   mss: 1460, sack: false, timestamps: true, windowScale: 7),
        OptionCase(name: "server MSS 1400, scale 9; phone MSS 1200, scale 2", laptop: .linux,
                   server: EndOptions(mss: 1400, windowScale: 9), phone: EndOptions(mss: 1200, windowScale: 2),
                   mss: 1400, sack: true, timestamps: true, windowScale: 9),
    ]

    @Test("SYN-ACK options are compatible with the original connection", arguments: optionCases)
    func synAckOptions(_ c: OptionCase) throws {
        let h = established(phone: c.phone, laptop: c.laptop, server: c.server)
        _ = try cutWithCache(h, cached: 0)
        let (synAck, _) = try h.phoneConnects(cut: cut)
        #expect(synAck.maximumSegmentSize == c.mss)
        #expect(synAck.sackPermitted == c.sack)
        #expect((synAck.timestamp != nil) == c.timestamps)
        #expect(synAck.windowScale == c.windowScale)
        #expect(synAck.checksumsValid)
    }
}
