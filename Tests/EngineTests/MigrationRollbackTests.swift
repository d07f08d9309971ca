@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// DESIGN §6 step 6 (roll back to the old device) and whole migrations end to end, packet by
/// packet, with both streams checked byte for byte, also across the 2^32 wrap.
@Suite("Migration: rollback, whole migrations, wrap")
struct MigrationRollbackTests {
    typealias H = MigrationHarness

    /// Device-side stream offset of a sequence number in the server's view.
    func deviceOffset(_ h: H, _ seq: SeqNumber) -> Int { Int(SeqNumber(h.l(0)).distance(to: seq)) }

    // MARK: Rollback

    @Test("no new device before the deadline: the cache goes to the old device, then the server gets its real window")
    func rollbackOnDeadline() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(3), settleWait: .seconds(1))
        _ = h.serverSends(4 * 1448, 6 * 1448, ack: 120)
        h.advance(milliseconds: 1000)
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .oldDeviceCut)
        #expect(h.report(mid)?.cutOffsetToDevice == UInt64(2 * 1448))
        h.advance(milliseconds: 1999)
        #expect(try h.timers().isEmpty)
        h.advance(milliseconds: 1)
        let out = try h.timers()
        // From the cut (what the laptop acknowledged) to the end of the cache.
        #expect(out.count == 4)
        var laptop = StreamReceiver()
        for (i, seg) in out.enumerated() {
            #expect(seg.source == MigrationLab.server && seg.destination == MigrationLab.laptop)
            #expect(seg.seq == SeqNumber(h.s((2 + i) * 1448)) && seg.ack == SeqNumber(h.l(120)))
            #expect(seg.window == 509)
            #expect(seg.timestamp! == (h.serverClock &- 1, h.laptopClock &- 1))
            #expect(seg.ipLength <= 1500 && seg.checksumsValid)
            laptop.take(seg, offset: h.serverOffset(seg.seq))
        }
        #expect(difference(laptop.stream(2 * 1448, 6 * 1448), serverBytes((2 * 1448)..<(6 * 1448))) == nil)
        var report = try #require(h.report(mid))
        #expect(report.reason == "the new device did not connect before the deadline")
        #expect(!report.isFinished)
        // The laptop takes it all: the server gets the laptop's real window, acknowledging the cache.
        let ack = h.send(h.fromLaptop(at: 120, ack: 6 * 1448, window: 480))
        #expect(ack.verdict == .consumed)
        let reopen = try ack.packets()
        #expect(reopen.count == 1)
        let toServer = try #require(reopen.first)
        #expect(toServer.destination == MigrationLab.server && toServer.source == MigrationLab.nat)
        #expect(toServer.flags == .ack && toServer.window == 480)
        #expect(toServer.seq == SeqNumber(h.l(120)) && toServer.ack == SeqNumber(h.s(6 * 1448)))
        #expect(toServer.checksumsValid)
        report = try #require(h.report(mid))
        #expect(report.phase == .rolledBack && report.isFinished)
        #expect(report.phases.map(\.phase) == [.requested, .paused, .oldDeviceCut, .rolledBack])
        #expect(report.reason == "the new device did not connect before the deadline")
        #expect(report.bytesCached == UInt64(4 * 1448))
        // The window update is kept until the server sends past the edge (issue 13 item 7).
        #expect(h.engine.activeMigrationCount == 1)
        #expect(h.summary?.device == MigrationLab.laptop && h.summary?.migration == nil)
        try expectLaptopContinues(h, serverAt: 6 * 1448, laptopAt: 120)
        #expect(h.engine.activeMigrationCount == 0)
    }

    /// Plain forwarding between the laptop and the server again, as before the migration.
    func expectLaptopContinues(_ h: H, serverAt: Int, laptopAt: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let data = h.send(h.fromServer(at: serverAt, ack: laptopAt, length: 1448))
        #expect(data.verdict == .forward, sourceLocation: sourceLocation)
        let d = try data.decoded
        #expect(d.destination == MigrationLab.laptop && d.seq == SeqNumber(h.s(serverAt)), sourceLocation: sourceLocation)
        #expect(d.ack == SeqNumber(h.l(laptopAt)) && d.window == 509, sourceLocation: sourceLocation)
        #expect(difference(d.payload, serverBytes(serverAt..<(serverAt + 1448))) == nil, sourceLocation: sourceLocation)
        let up = h.send(h.fromLaptop(at: laptopAt, ack: serverAt + 1448, length: 100, window: 470))
        #expect(up.verdict == .forward, sourceLocation: sourceLocation)
        let u = try up.decoded
        #expect(u.destination == MigrationLab.server && u.seq == SeqNumber(h.l(laptopAt)), sourceLocation: sourceLocation)
        #expect(u.ack == SeqNumber(h.s(serverAt + 1448)) && u.window == 470, sourceLocation: sourceLocation)
        #expect(difference(u.payload, deviceBytes(laptopAt..<(laptopAt + 100))) == nil, sourceLocation: sourceLocation)
        #expect(u.checksumsValid && d.checksumsValid, sourceLocation: sourceLocation)
        #expect(h.send(h.fromServer(at: serverAt + 1448, ack: laptopAt + 100)).verdict == .forward, sourceLocation: sourceLocation)
    }

    @Test("the new device resets (after or during its handshake): roll back, the cache to the old device", arguments: [true, false])
    func rollbackOnNewDeviceReset(afterHandshake: Bool) throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        _ = h.serverSends(2 * 1448, 5 * 1448, ack: 120)
        var rstSeq = h.s(2 * 1448)
        if afterHandshake {
            let (_, flight) = try h.phoneConnects(cut: 2 * 1448)
            #expect(flight.count == 3)
            rstSeq = h.s(5 * 1448)
        } else {
            #expect(try h.send(h.phoneSyn()).packets().first?.flags == [.syn, .ack])
        }
        let reset = h.send(tcp4(src: MigrationLab.phone, dst: MigrationLab.server, flags: .rst, seq: h.p(0)))
        #expect(reset.verdict == .consumed)
        let out = try reset.packets()
        // The phone's sub-connection is closed by the proxy too, at what it had been sent.
        let rst = try #require(out.first { $0.destination == MigrationLab.phone })
        #expect(rst.flags.contains(.rst) && rst.seq == SeqNumber(rstSeq))
        let toLaptop = out.filter { $0.destination == MigrationLab.laptop }
        #expect(toLaptop.map(\.seq) == (2..<5).map { SeqNumber(h.s($0 * 1448)) })
        var laptop = StreamReceiver()
        for seg in toLaptop { laptop.take(seg, offset: h.serverOffset(seg.seq)) }
        #expect(difference(laptop.stream(2 * 1448, 5 * 1448), serverBytes((2 * 1448)..<(5 * 1448))) == nil)
        #expect(h.report(mid)?.reason == "the new device reset its connection")
        // The phone is not the flow's any more: its late segments are absorbed, not passed
        // through to the server as if they belonged to an unmanaged connection.
        #expect(h.send(h.fromPhone(at: 0, ack: 2 * 1448)).verdict == .consumed)
        #expect(h.engine.flowCount == 1)
        let ack = try h.send(h.fromLaptop(at: 120, ack: 5 * 1448)).packets()
        #expect(ack.count == 1 && ack.first?.window == h.laptopWindow && ack.first?.ack == SeqNumber(h.s(5 * 1448)))
        let report = try #require(h.report(mid))
        #expect(report.phase == .rolledBack)
        #expect(report.reason == "the new device reset its connection")
        try expectLaptopContinues(h, serverAt: 5 * 1448, laptopAt: 120)
    }

    @Test("the new device connected but did not take the cache before the deadline: rolled back, it gets a RST")
    func rollbackOnSlowNewDevice() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(4))
        _ = try h.timers()
        _ = h.serverSends(2 * 1448, 4 * 1448, ack: 120)
        _ = try h.phoneConnects(cut: 2 * 1448)
        var sawRST = false
        var toLaptop: [DecodedTCP4] = []
        for _ in 0..<40 {
            h.advance(milliseconds: 100)
            let out = try h.timers()
            sawRST = sawRST || out.contains { $0.destination == MigrationLab.phone && $0.flags.contains(.rst) }
            toLaptop += out.filter { $0.destination == MigrationLab.laptop }
        }
        #expect(sawRST)
        #expect(toLaptop.map(\.seq) == [SeqNumber(h.s(2 * 1448)), SeqNumber(h.s(3 * 1448))])
        #expect(h.report(mid)?.reason == "the new device did not take the cached bytes before the deadline")
        _ = h.send(h.fromLaptop(at: 120, ack: 4 * 1448))
        #expect(h.report(mid)?.phase == .rolledBack)
    }

    @Test("nothing cached and no new device: at the deadline the server's window reopens at once")
    func rollbackWithEmptyCache() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(2))
        h.advance(milliseconds: 2000)
        let out = try h.timers()
        #expect(out.count == 2)
        let toServer = try #require(out.first { $0.destination == MigrationLab.server })
        #expect(toServer.window == h.laptopWindow && toServer.ack == SeqNumber(h.s(2 * 1448)))
        // The laptop, frozen at window 0 since the pause and sent nothing back, gets the server's window.
        let toLaptop = try #require(out.first { $0.destination == MigrationLab.laptop })
        #expect(toLaptop.flags == .ack && toLaptop.window == 509 && toLaptop.payload.isEmpty)
        #expect(toLaptop.seq == SeqNumber(h.s(2 * 1448)) && toLaptop.ack == SeqNumber(h.l(120)))
        #expect(h.report(mid)?.phase == .rolledBack)
        try expectLaptopContinues(h, serverAt: 2 * 1448, laptopAt: 120)
    }

    @Test("settle deadline with bytes of the old device the server never acknowledged: rolled back with the reason, not cut over them")
    func rollbackOverUnknownBytes() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(10), settleWait: .milliseconds(500))
        // The laptop's last 200 bytes go out (and are lost on the way, or held by the server
        // out of order): the server never acknowledges them.
        #expect(h.send(h.fromLaptop(at: 120, ack: 2 * 1448, length: 200)).verdict == .forward)
        h.advance(milliseconds: 499)
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .paused)
        h.advance(milliseconds: 1)
        _ = try h.timers()
        let report = try #require(h.report(mid))
        #expect(report.phase == .rolledBack && report.isFinished, "\(report.phases.map(\.phase))")
        #expect(report.reason == "the server had not acknowledged 200 bytes the old device sent before the settle deadline")
        #expect(h.summary?.migration == nil && h.summary?.device == MigrationLab.laptop)
        // The phone's SYN finds no migration to join.
        #expect(h.send(h.phoneSyn()).verdict != .consumed)
        // The laptop's connection goes on: its retransmission reaches the server, which
        // acknowledges it; then both ways as before.
        let again = h.send(h.fromLaptop(at: 120, ack: 2 * 1448, length: 200))
        #expect(again.verdict == .forward)
        #expect(h.send(h.fromServer(at: 2 * 1448, ack: 320)).verdict == .forward)
        try expectLaptopContinues(h, serverAt: 2 * 1448, laptopAt: 320)
    }

    @Test("the old device does not take the cache back either: both sides reset after twice the deadline")
    func abandon() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(1))
        _ = h.serverSends(2 * 1448, 3 * 1448, ack: 120)
        h.advance(milliseconds: 1000)
        _ = try h.timers()
        #expect(h.report(mid)?.reason != nil && h.report(mid)?.phase == .oldDeviceCut)
        h.advance(milliseconds: 1001)
        let out = try h.timers()
        #expect(out.contains { $0.destination == MigrationLab.server && $0.flags.contains(.rst) })
        #expect(out.contains { $0.destination == MigrationLab.laptop && $0.flags.contains(.rst) })
        // The server's RST sits exactly at what it acknowledged of the laptop's stream (RFC 5961 §3.2).
        #expect(out.first { $0.destination == MigrationLab.server && $0.flags.contains(.rst) }?.seq == SeqNumber(h.l(120)))
        #expect(h.report(mid)?.phase == .aborted && h.report(mid)?.isFinished == true)
        #expect(h.summary?.state == .reset && h.summary?.migration == nil)
    }

    @Test("the new device resets after sending data to the server: going back would corrupt the stream, so every side is reset")
    func newDeviceFailsAfterSendingData() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        _ = h.serverSends(2 * 1448, 5 * 1448, ack: 120)
        _ = try h.phoneConnects(cut: 2 * 1448)
        // The phone continues the laptop's stream: 100 bytes go to the server.
        let data = h.send(h.fromPhone(at: 0, ack: 2 * 1448, length: 100))
        #expect(data.verdict == .forward)
        let out = try h.send(tcp4(src: MigrationLab.phone, dst: MigrationLab.server, flags: .rst, seq: h.p(100))).packets()
        #expect(out.contains { $0.destination == MigrationLab.server && $0.flags.contains(.rst) })
        #expect(out.contains { $0.destination == MigrationLab.laptop && $0.flags.contains(.rst) })
        #expect(!out.contains { $0.destination == MigrationLab.laptop && !$0.payload.isEmpty })
        let report = try #require(h.report(mid))
        #expect(report.phase == .aborted)
        #expect(report.reason?.contains("had sent 100 bytes") == true)
        #expect(h.summary?.state == .reset)
        #expect(h.engine.activeMigrationCount == 0)
    }

    @Test("rolling back to a device that came by an earlier migration uses its own options: MSS, no timestamps, no scaling")
    func rollbackToMigratedDevice() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448, phone: EndOptions(mss: 1200, timestamps: false, windowScale: nil))
        h.phoneWindow = 65535
        let cut1 = 2 * 1448, end1 = 3 * 1448, end2 = 6 * 1448
        // Leg 1: to the phone.
        let (m1, _) = try h.migrate()
        _ = try h.timers()
        _ = h.serverSends(cut1, end1, ack: 120)
        let (_, flight) = try h.phoneConnects(cut: cut1)
        #expect(flight.map(\.payload.count) == [1200, 248])
        var phone = StreamReceiver()
        try h.phoneDrains(flight, into: &phone, cut: cut1)
        #expect(h.report(m1)?.phase == .spliced)
        // Leg 2: toward a laptop port that never connects; the cache goes back to the phone.
        let (r2, start) = try h.startMigration(to: MigrationTarget(address: address("10.1.0.2"), port: 40001), deadline: .seconds(2))
        let m2 = try r2.get()
        #expect(start.first { $0.destination == MigrationLab.phone }?.timestamp == nil)
        _ = try h.timers()
        #expect(h.report(m2)?.phase == .oldDeviceCut)
        for o in h.serverSends(end1, end2, ack: 120) { #expect(o.verdict == .consumed) }
        h.advance(milliseconds: 2000)
        let segs = h.segmentsToPhone(try h.timers())
        // Its MSS less the 12 bytes the server's timestamp option takes in segments after the
        // splice; no timestamps; the server's 509 << 7 in the phone's unscaled field.
        #expect(segs.map(\.payload.count) == [1188, 1188, 1188, 780])
        #expect(segs.allSatisfy { $0.timestamp == nil && $0.window == 65152 && $0.ipLength <= 1240 && $0.checksumsValid })
        for seg in segs { phone.take(seg, offset: h.serverOffset(seg.seq)) }
        #expect(difference(phone.stream(cut1, end2), serverBytes(cut1..<end2)) == nil)
        let done = try h.send(h.fromPhone(at: 0, ack: end2, window: 60000)).packets()
        #expect(h.report(m2)?.phase == .rolledBack)
        let reopen = try #require(done.first { $0.destination == MigrationLab.server })
        #expect(reopen.window == 60000 >> 7) // in the laptop's scale, which the server applies
        #expect(reopen.ack == SeqNumber(h.s(end2)))
    }
}
