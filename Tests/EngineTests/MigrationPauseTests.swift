@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// DESIGN §6 steps 1-3, packet by packet: preconditions, the pause (zero window both ways,
/// server data cached and pre-acknowledged, probes answered), and the cut.
@Suite("Migration: preconditions, pause, cut")
struct MigrationPauseTests {
    typealias H = MigrationHarness

    // MARK: Preconditions

    /// What a refusal must leave alone.
    struct Snapshot: Equatable {
        var summaries: [FlowSummary]
        var counters: EngineCounters
        var storage: Int
        var migrations: Int
        init(_ h: H) {
            summaries = h.engine.flowSummaries(now: h.now)
            counters = h.engine.counters
            storage = h.engine.inFlightStorageBytes
            migrations = h.engine.activeMigrationCount
        }
    }

    func expectRefused(_ h: H, flow: FlowID? = nil, to target: MigrationTarget = MigrationTarget(address: MigrationLab.phoneAddress),
                       _ refusal: MigrationRefusal, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = Snapshot(h)
        let (r, out) = try h.startMigration(to: target, flow: flow)
        #expect(r == .failure(refusal), sourceLocation: sourceLocation)
        #expect(out.isEmpty, sourceLocation: sourceLocation)
        #expect(Snapshot(h) == before, sourceLocation: sourceLocation)
        #expect(!refusal.description.isEmpty, sourceLocation: sourceLocation)
    }

    @Test("unknown flow, same device, already migrating: refused, nothing changes")
    func refusals() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 1448)
        try expectRefused(h, flow: FlowID(99), .unknownFlow(FlowID(99)))
        try expectRefused(h, to: MigrationTarget(address: address("10.1.0.2")), .sameDevice(h.flowID))
        try expectRefused(h, to: MigrationTarget(address: address("10.1.0.2"), port: 40000), .sameDevice(h.flowID))
        let (mid, _) = try h.migrate()
        try expectRefused(h, .alreadyMigrating(h.flowID, mid))
        #expect(h.engine.activeMigrationCount == 1)
    }

    @Test("a flow not established (SYN only, then SYN-ACK only) is refused")
    func notEstablished() throws {
        let h = H()
        #expect(h.send(tcp4(src: MigrationLab.laptop, dst: MigrationLab.server, flags: .syn, seq: h.laptopISN,
                            options: EndOptions.linux.syn(tsval: 1))).verdict == .forward)
        let id = try #require(h.engine.flowSummaries(now: h.now).first?.id)
        try expectRefused(h, flow: id, .notEstablished(id, .synSent))
        h.send(tcp4(src: MigrationLab.server, dst: MigrationLab.nat, flags: [.syn, .ack], seq: h.serverISN,
                    ack: h.laptopISN &+ 1, options: EndOptions.linux.syn(tsval: 9, tsecr: 1)))
        try expectRefused(h, flow: id, .notEstablished(id, .synReceived))
    }

    @Test("an in-flight copy that lost bytes the device has not acknowledged is refused, with the bytes it lacks")
    func copyIncomplete() throws {
        var limits = EngineLimits()
        limits.inFlightPerFlow = 2000
        // 2896 bytes unacknowledged, the copy kept only 2000 of them.
        let h = H.established(downloaded: 2 * 1448, acked: 0, limits: limits)
        #expect(h.internalFlow?.inFlight?.count == 2000)
        try expectRefused(h, .copyIncomplete(h.flowID, missing: 896))
        // Once the device acknowledged what the copy lacks, the flow can migrate.
        h.send(h.fromLaptop(at: 120, ack: 2 * 1448))
        _ = try h.migrate()
    }

    // MARK: Pause

    @Test("pause: window 0 to the server acknowledging all the copy holds, and window 0 to the old device")
    func pauseFreezesBothSides() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, out) = try h.migrate()
        #expect(out.count == 2)
        let toServer = try #require(out.first { $0.destination == MigrationLab.server })
        #expect(toServer.source == MigrationLab.nat)
        #expect(toServer.flags == .ack && toServer.window == 0)
        #expect(toServer.seq == SeqNumber(h.l(120)))
        #expect(toServer.ack == SeqNumber(h.s(4 * 1448))) // the 2896 bytes the laptop has not acked too
        #expect(toServer.payload.isEmpty && toServer.checksumsValid)
        #expect(toServer.timestamp! == (h.laptopClock &- 1, h.serverClock &- 1))
        let toLaptop = try #require(out.first { $0.destination == MigrationLab.laptop })
        #expect(toLaptop.source == MigrationLab.server)
        #expect(toLaptop.flags == .ack && toLaptop.window == 0)
        #expect(toLaptop.seq == SeqNumber(h.s(4 * 1448)) && toLaptop.ack == SeqNumber(h.l(120)))
        #expect(toLaptop.timestamp! == (h.serverClock &- 1, h.laptopClock &- 1))
        #expect(toLaptop.checksumsValid)
        let report = try #require(h.report(mid))
        #expect(report.phase == .paused)
        #expect(report.phases.map(\.phase) == [.requested, .paused])
        #expect(report.oldDevice == MigrationLab.laptop && report.newDevice == nil)
        #expect(h.summary?.migration == mid && h.summary?.migrationPhase == .paused)
    }

    @Test("pause: server data is cached, not forwarded, and each segment pre-acknowledged with window 0")
    func serverDataCachedAndPreAcked() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        _ = try h.migrate()
        for k in 0..<3 {
            let from = (4 + k) * 1448
            let o = h.send(h.fromServer(at: from, ack: 120, length: 1448))
            #expect(o.verdict == .consumed)
            let out = try o.packets()
            #expect(out.count == 1)
            #expect(!out.contains { $0.destination == MigrationLab.laptop })
            let ack = try #require(out.first)
            #expect(ack.destination == MigrationLab.server && ack.flags == .ack && ack.window == 0)
            #expect(ack.seq == SeqNumber(h.l(120)))
            #expect(ack.ack == SeqNumber(h.s(from + 1448)))
            #expect(ack.timestamp?.echoReply == h.serverClock &- 1) // echoes the segment just cached
        }
        let copy = try #require(h.internalFlow?.inFlight)
        #expect(copy.start == SeqNumber(h.s(2 * 1448)) && copy.end == SeqNumber(h.s(7 * 1448)))
        #expect(difference(copy.bytes(from: copy.start, length: copy.count), serverBytes((2 * 1448)..<(7 * 1448))) == nil)
        #expect(h.engine.counters.packetsConsumed == 3)
    }

    @Test("pause: a zero-window probe (seq = next expected - 1, no data) is answered with next expected and window 0")
    func zeroWindowProbeAnswered() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 4 * 1448)
        _ = try h.migrate()
        for _ in 0..<3 {
            let o = h.send(h.fromServer(at: 0, ack: 120, seq: h.s(4 * 1448) &- 1))
            #expect(o.verdict == .consumed)
            let out = try o.packets()
            #expect(out.count == 1)
            #expect(out.first?.destination == MigrationLab.server)
            #expect(out.first?.ack == SeqNumber(h.s(4 * 1448)) && out.first?.window == 0)
            h.advance(milliseconds: 200)
        }
        // A pure ACK from the server (nothing new) is not answered (no ack of an ack).
        let quiet = h.send(h.fromServer(at: 4 * 1448, ack: 120))
        #expect(quiet.verdict == .consumed && quiet.generated.isEmpty)
    }

    /// The server's tail-loss probe (RFC 8985 §7) resends its last segment when the freeze's
    /// ACK is late; the proxy already holds those bytes. Seen in the lab: without a D-SACK the
    /// server took the probe for a repaired loss (TcpExtTCPLossProbeRecovery) and set ssthresh.
    @Test("pause: a retransmission of bytes already cached is answered with a D-SACK block for them (RFC 2883), with SACK negotiated")
    func duplicateAnsweredWithDSACK() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        _ = try h.migrate()
        #expect(h.send(h.fromServer(at: 4 * 1448, ack: 120, length: 1448)).verdict == .consumed)
        // The probe: the last 448 bytes of that segment again; then a probe that overlaps the edge.
        let probe = try h.send(h.fromServer(at: 5 * 1448 - 448, ack: 120, length: 448)).packets()
        let ack = try #require(probe.first)
        #expect(probe.count == 1 && ack.destination == MigrationLab.server && ack.window == 0)
        #expect(ack.ack == SeqNumber(h.s(5 * 1448)))
        #expect(ack.options.contains(.sack([SackBlock(SeqNumber(h.s(5 * 1448 - 448)), SeqNumber(h.s(5 * 1448)))])))
        #expect(ack.timestamp != nil && ack.checksumsValid)
        let overlap = try h.send(h.fromServer(at: 5 * 1448 - 100, ack: 120, length: 1448)).packets()
        #expect(overlap.first?.ack == SeqNumber(h.s(6 * 1448 - 100)))
        #expect(overlap.first?.options.contains(.sack([SackBlock(SeqNumber(h.s(5 * 1448 - 100)), SeqNumber(h.s(5 * 1448)))])) == true)
        // New data only: no SACK block.
        let fresh = try h.send(h.fromServer(at: 6 * 1448 - 100, ack: 120, length: 1448)).packets()
        #expect(fresh.first.map { !$0.options.contains { if case .sack = $0 { true } else { false } } } == true)
    }

    /// A server RST used to be cached like data and swallowed; the migration went on toward a
    /// dead connection. RFC 5961 §3.2 decides which RSTs count.
    @Test("pause: a server RST at RCV.NXT ends the migration (aborted, with the reason) and resets the old device; one out of window is dropped")
    func serverResetDuringPause() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate()
        let stray = h.send(h.fromServer(.rst, at: 9 * 1448 + 70_000, ack: 120))
        #expect(stray.verdict == .drop(.resetOutOfWindow) && stray.generated.isEmpty)
        #expect(h.report(mid)?.phase == .paused)
        let reset = h.send(h.fromServer(.rst, at: 4 * 1448, ack: 120))
        #expect(reset.verdict == .consumed)
        let out = try reset.packets()
        let toLaptop = try #require(out.first { $0.destination == MigrationLab.laptop })
        // At what the laptop was sent (all of it arrived: its RCV.NXT).
        #expect(toLaptop.flags.contains(.rst) && toLaptop.seq == SeqNumber(h.s(4 * 1448)))
        let report = try #require(h.report(mid))
        #expect(report.phase == .aborted)
        #expect(report.reason == "the server reset the connection")
        #expect(h.summary?.state == .reset && h.summary?.migration == nil)
    }

    @Test("pause: an old device's RST at the server's RCV.NXT ends the migration and reaches the server")
    func oldDeviceResetDuringPause() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate()
        let reset = h.send(h.fromLaptop(.rst, at: 120, ack: 2 * 1448))
        let out = try reset.packets()
        let toServer = try #require(out.first { $0.destination == MigrationLab.server })
        #expect(toServer.flags.contains(.rst) && toServer.source == MigrationLab.nat && toServer.seq == SeqNumber(h.l(120)))
        #expect(h.report(mid)?.phase == .aborted && h.report(mid)?.reason == "the old device reset the connection")
    }

    /// A server segment lost on its way to the proxy during the pause: the ones after it used
    /// to be dropped and the proxy's ACKs carried no SACK, so a Linux server (SACK + RACK)
    /// waited for a tail-loss probe or its RTO. The proxy now receives as a good receiver does.
    @Test("pause: segments past a hole are kept and SACKed (the latest first); the hole's retransmission completes the copy")
    func holeSACKedThenFilled() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        _ = try h.migrate()
        // 4*1448..5*1448 is lost; 5 and 6 arrive, then 8 (7 lost too).
        for (k, blocks) in [(5, [(5, 6)]), (6, [(5, 7)]), (8, [(8, 9), (5, 7)])] {
            let out = try h.send(h.fromServer(at: k * 1448, ack: 120, length: 1448)).packets()
            let ack = try #require(out.first)
            #expect(out.count == 1 && ack.destination == MigrationLab.server && ack.window == 0)
            #expect(ack.ack == SeqNumber(h.s(4 * 1448)))
            #expect(ack.options.contains(.sack(blocks.map { SackBlock(SeqNumber(h.s($0.0 * 1448)), SeqNumber(h.s($0.1 * 1448))) })))
            #expect(ack.checksumsValid)
        }
        #expect(h.internalFlow?.inFlight?.end == SeqNumber(h.s(4 * 1448)))
        // The first hole fills: the copy runs to 7, only 8 is still held.
        let filled = try #require(try h.send(h.fromServer(at: 4 * 1448, ack: 120, length: 1448)).packets().first)
        #expect(filled.ack == SeqNumber(h.s(7 * 1448)))
        #expect(filled.options.contains(.sack([SackBlock(SeqNumber(h.s(8 * 1448)), SeqNumber(h.s(9 * 1448)))])))
        // The second: everything, no block left.
        let all = try #require(try h.send(h.fromServer(at: 7 * 1448, ack: 120, length: 1448)).packets().first)
        #expect(all.ack == SeqNumber(h.s(9 * 1448)))
        #expect(!all.options.contains { if case .sack = $0 { true } else { false } })
        let copy = try #require(h.internalFlow?.inFlight)
        #expect(copy.start == SeqNumber(h.s(2 * 1448)) && copy.end == SeqNumber(h.s(9 * 1448)))
        #expect(difference(copy.bytes(from: copy.start, length: copy.count), serverBytes((2 * 1448)..<(9 * 1448))) == nil)
    }

    @Test("out-of-order hold: bounded in pieces and bytes; merged blocks; contiguous pieces taken in order")
    func outOfOrderHoldBounds() {
        var hold = OutOfOrderHold(capBytes: 3000)
        let b = [UInt8](repeating: 7, count: 1000)
        var kept: [Bool] = []
        b.withUnsafeBytes { p in
            for seq in [3000, 1000, 2000, 9000] { kept.append(hold.insert(seq: SeqNumber(UInt32(seq)), payload: p)) }
        }
        #expect(kept == [true, true, true, false]) // the fourth would pass 3000 bytes: not kept
        #expect(hold.sackBlocks(latest: nil, limit: 3) == [SackBlock(SeqNumber(1000), SeqNumber(4000))])
        #expect(hold.takeContiguous(upTo: SeqNumber(500)).isEmpty)
        #expect(hold.takeContiguous(upTo: SeqNumber(1000)).map(\.seq) == [SeqNumber(1000), SeqNumber(2000), SeqNumber(3000)])
        #expect(hold.isEmpty && hold.byteCount == 0)
        var many = OutOfOrderHold(capBytes: 1 << 20)
        var accepted = 0
        var extra = true
        [UInt8](repeating: 1, count: 10).withUnsafeBytes { p in
            for i in 0..<OutOfOrderHold.maxPieces where many.insert(seq: SeqNumber(UInt32(100 * i)), payload: p) { accepted += 1 }
            extra = many.insert(seq: SeqNumber(1_000_000), payload: p)
        }
        #expect(accepted == OutOfOrderHold.maxPieces && !extra)
        #expect(many.sackBlocks(latest: SeqNumber(505), limit: 3).first == SackBlock(SeqNumber(500), SeqNumber(510)))
    }

    /// The probe crossed the pause the other way: the proxy forwarded it to the laptop just
    /// before pausing, and the laptop's D-SACK for it came after. Seen in CI: swallowed, the
    /// server's next ACK past the probe (from the phone) counted as a repaired loss.
    @Test("pause: the old device's D-SACK for a probe forwarded before the pause reaches the server in a freeze ACK; a plain ACK does not")
    func oldDeviceDSACKRelayed() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        // The server's probe (its last 448 bytes again) goes to the laptop before the pause.
        #expect(h.send(h.fromServer(at: 4 * 1448 - 448, ack: 120, length: 448)).verdict == .forward)
        _ = try h.migrate()
        let toServer = { (out: [DecodedTCP4]) in out.filter { $0.destination == MigrationLab.server } }
        let plain = try toServer(h.send(h.fromLaptop(at: 120, ack: 4 * 1448)).packets())
        #expect(plain.isEmpty)
        let relayed = try toServer(h.send(h.fromLaptop(at: 120, ack: 4 * 1448, sack: [(4 * 1448 - 448, 4 * 1448)])).packets())
        let ack = try #require(relayed.first)
        #expect(relayed.count == 1 && ack.window == 0 && ack.ack == SeqNumber(h.s(4 * 1448)))
        #expect(ack.options.contains(.sack([SackBlock(SeqNumber(h.s(4 * 1448 - 448)), SeqNumber(h.s(4 * 1448)))])))
        #expect(ack.checksumsValid)
        // An ordinary SACK block (above the ack) is no duplicate report.
        #expect(try toServer(h.send(h.fromLaptop(at: 120, ack: 3 * 1448, sack: [(3 * 1448 + 100, 3 * 1448 + 200)])).packets()).isEmpty)
    }

    @Test("pause: without SACK negotiated, a duplicate is answered with a plain ACK")
    func duplicateWithoutSACK() throws {
        var noSack = EndOptions.linux
        noSack.sack = false
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448, laptop: noSack)
        _ = try h.migrate()
        #expect(h.send(h.fromServer(at: 4 * 1448, ack: 120, length: 1448)).verdict == .consumed)
        let ack = try #require(try h.send(h.fromServer(at: 4 * 1448, ack: 120, length: 1448)).packets().first)
        #expect(ack.ack == SeqNumber(h.s(5 * 1448)) && ack.window == 0)
        #expect(!ack.options.contains { if case .sack = $0 { true } else { false } })
    }

    @Test("pause: old-device data is forwarded with window 0 and the pre-ack; every segment toward the server has window 0")
    func oldDeviceDataDuringPause() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        var towardServer: [DecodedTCP4] = []
        let (_, start) = try h.migrate()
        towardServer += start.filter { $0.destination == MigrationLab.server }
        for o in h.serverSends(4 * 1448, 6 * 1448, ack: 120) {
            towardServer += try o.packets().filter { $0.destination == MigrationLab.server }
        }
        // The laptop sends 200 bytes (its ack stops at what it received).
        let data = h.fromLaptop(at: 120, ack: 3 * 1448, length: 200, window: 400)
        let o = h.send(data)
        #expect(o.verdict == .forward)
        let fwd = try o.decoded
        towardServer.append(fwd)
        #expect(fwd.source == MigrationLab.nat && fwd.destination == MigrationLab.server)
        #expect(fwd.seq == SeqNumber(h.l(120)))
        #expect(fwd.ack == SeqNumber(h.s(6 * 1448))) // the pre-ack point, not the laptop's ack
        #expect(fwd.window == 0)
        #expect(difference(fwd.payload, deviceBytes(120..<320)) == nil)
        #expect(fwd.timestamp! == (h.laptopClock &- 1, h.serverClock &- 1))
        #expect(fwd.checksumsValid)
        // A pure ACK from the laptop goes nowhere (the proxy already acknowledged for it).
        let pure = h.send(h.fromLaptop(at: 320, ack: 4 * 1448))
        #expect(pure.verdict == .consumed && pure.generated.isEmpty)
        // Probes from the server, more data: still window 0.
        towardServer += try h.send(h.fromServer(at: 0, ack: 120, seq: h.s(6 * 1448) &- 1)).packets()
        #expect(towardServer.count == 5)
        #expect(towardServer.allSatisfy { $0.window == 0 && $0.checksumsValid })
    }

    // MARK: Cut

    @Test("cut when the old device acknowledged what it was forwarded and the server what the old device sent")
    func cutWhenBothSettle() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(settleWait: .seconds(5))
        _ = h.serverSends(4 * 1448, 5 * 1448, ack: 120)
        #expect(h.send(h.fromLaptop(at: 120, ack: 3 * 1448, length: 200)).verdict == .forward)
        // The laptop acknowledges everything it was forwarded: the server still lacks its 200 bytes.
        #expect(h.send(h.fromLaptop(at: 320, ack: 4 * 1448)).verdict == .consumed)
        #expect(try h.timers().isEmpty)
        #expect(h.report(mid)?.phase == .paused)
        // The server acknowledges them: both directions settled, the cut is made.
        let o = h.send(h.fromServer(at: 5 * 1448, ack: 320))
        #expect(o.verdict == .consumed)
        let report = try #require(h.report(mid))
        #expect(report.phase == .oldDeviceCut)
        #expect(report.cutOffsetToDevice == UInt64(4 * 1448))
        #expect(report.cutOffsetToServer == 320)
        // The old device learns the server has its bytes (window 0 still); nothing else.
        let out = try o.packets()
        #expect(out.count == 1)
        #expect(out.first?.destination == MigrationLab.laptop && out.first?.ack == SeqNumber(h.l(320)) && out.first?.window == 0)
        // The copy now starts at the cut.
        #expect(h.internalFlow?.inFlight?.start == SeqNumber(h.s(4 * 1448)))
        #expect(h.internalFlow?.inFlight?.end == SeqNumber(h.s(5 * 1448)))

        // After the cut the old device's packets are consumed: nothing reaches the server.
        let late = h.send(h.fromLaptop(at: 320, ack: 4 * 1448, length: 50))
        #expect(late.verdict == .consumed && late.generated.isEmpty)
        let lateAck = h.send(h.fromLaptop(at: 320, ack: 4 * 1448))
        #expect(lateAck.verdict == .consumed && lateAck.generated.isEmpty)
    }

    @Test("a flow already settled is cut at the first timer tick")
    func cutAtOnceWhenQuiet() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 4 * 1448)
        let (mid, _) = try h.migrate()
        #expect(h.report(mid)?.phase == .paused)
        #expect(try h.timers().isEmpty)
        let report = try #require(h.report(mid))
        #expect(report.phase == .oldDeviceCut)
        #expect(report.cutOffsetToDevice == UInt64(4 * 1448) && report.cutOffsetToServer == 120)
        #expect(report.phases.map(\.seconds) == [0, 0, 0])
    }

    @Test("cut at the settle deadline when the old device never acknowledges: at its highest ack")
    func cutAtSettleDeadline() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(10), settleWait: .milliseconds(500))
        h.advance(milliseconds: 499)
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .paused)
        h.advance(milliseconds: 1)
        _ = try h.timers()
        let report = try #require(h.report(mid))
        #expect(report.phase == .oldDeviceCut)
        #expect(report.cutOffsetToDevice == UInt64(2 * 1448))
        #expect(report.cutOffsetToServer == 120)
        #expect(report.phases.last?.seconds == 0.5)
        // The bytes past the cut come from the copy.
        let copy = try #require(h.internalFlow?.inFlight)
        #expect(copy.start == SeqNumber(h.s(2 * 1448)) && copy.count == 2 * 1448)
    }

    @Test("the settle wait is bounded by half the deadline")
    func settleBoundedByDeadline() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(2), settleWait: .seconds(5))
        h.advance(milliseconds: 1000)
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .oldDeviceCut)
        #expect(h.report(mid)?.cutOffsetToDevice == 1448)
    }
}
