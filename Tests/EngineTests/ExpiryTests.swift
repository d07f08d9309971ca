@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Idle and closed-flow expiry (RFC 5382 §5 timeouts), by the incremental sweep.
@Suite("Expiry")
struct ExpiryTests {
    let c = Conversation()

    @Test("an embryonic flow (SYN only) expires after the embryonic timeout, not before")
    func embryonic() throws {
        let h = EngineHarness(Lab.transparent())
        c.deviceSends(h, .syn, seq: 1000)
        h.advance(seconds: 75)
        h.expire()
        #expect(h.engine.flowCount == 1)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.flowsExpired == 1 && h.engine.counters.flowsClosed == 0)
    }

    @Test("a SYN-ACKed flow without the device's ACK is still embryonic")
    func embryonicAfterSynAck() throws {
        let h = EngineHarness(Lab.transparent())
        c.deviceSends(h, .syn, seq: 1000)
        c.serverSends(h, [.syn, .ack], seq: 5000, ack: 1001)
        h.advance(seconds: 75, nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0)
    }

    @Test("an established flow expires after 7440 s idle, not before")
    func establishedIdle() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        h.advance(seconds: 7_440)
        h.expire()
        #expect(h.engine.flowCount == 1)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.flowsExpired == 1)
    }

    @Test("a half-closed flow expires after 600 s idle")
    func halfClosedIdle() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        c.deviceSends(h, [.fin, .ack], seq: 1001, ack: 5001)
        h.advance(seconds: 600)
        h.expire()
        #expect(h.engine.flowCount == 1)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0)
    }

    @Test("traffic restarts the idle clock")
    func activityRefreshes() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        for _ in 0..<5 {
            h.advance(seconds: 7_000)
            h.expire()
            c.deviceSends(h, .ack, seq: 1001, ack: 5001)
        }
        #expect(h.engine.flowCount == 1)
        #expect(h.flow()?.idleSeconds == 0)
        #expect(h.flow()?.ageSeconds == 35_000)
    }

    @Test("nothing expires early: one flow in each state, clock just short of each timeout")
    func nothingEarly() throws {
        let h = EngineHarness(Lab.transparent())
        // 40000 embryonic, 40001 established, 40002 half-closed, 40003 closed, 40004 reset.
        let conv = (0..<5).map { Conversation(device: "10.1.0.2:\(40_000 + $0)", nat: "10.2.0.1:\(61_000 + $0)") }
        conv[0].deviceSends(h, .syn, seq: 1)
        for k in 1...4 { conv[k].handshake(h) }
        conv[2].deviceSends(h, [.fin, .ack], seq: 1001, ack: 5001)
        conv[3].deviceSends(h, [.fin, .ack], seq: 1001, ack: 5001)
        conv[3].serverSends(h, [.fin, .ack], seq: 5001, ack: 1002)
        conv[3].deviceSends(h, .ack, seq: 1002, ack: 5002)
        conv[4].serverSends(h, .rst, seq: 5001)
        let states = (0..<5).map { h.state(device: "10.1.0.2:\(40_000 + $0)") }
        #expect(states == [.synSent, .established, .halfClosed, .closed, .reset])

        // Every ~second up to 30 s: nothing goes.
        for _ in 0..<30 { h.advance(seconds: 1); h.expire() }
        #expect(h.engine.flowCount == 5)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 3) // closed and reset are gone
        h.advance(seconds: 45) // 75 s + 1 ns
        h.expire()
        #expect(h.engine.flowCount == 2)
        h.advance(seconds: 525) // 600 s + 1 ns
        h.expire()
        #expect(h.engine.flowCount == 1)
        #expect(h.state(device: "10.1.0.2:40001") == .established)
        h.advance(seconds: 6_840)
        h.expire()
        #expect(h.engine.flowCount == 0)
        #expect(h.engine.counters.flowsClosed == 2 && h.engine.counters.flowsExpired == 3)
        #expect(h.engine.natPortsInUse == 0)
    }

    @Test("a clock that steps back never expires anything")
    func clockBackwards() throws {
        let h = EngineHarness(Lab.transparent(), start: Instant(nanoseconds: 10_000_000_000_000))
        c.deviceSends(h, .syn, seq: 1)
        h.engine.expire(now: Instant(nanoseconds: 0))
        h.engine.expireAll(now: Instant(nanoseconds: 0))
        #expect(h.engine.flowCount == 1)
    }

    @Test("the incremental sweep examines at most expirySweepPerTick slots and covers them all")
    func incrementalSweep() throws {
        var limits = EngineLimits()
        limits.expirySweepPerTick = 7
        let h = EngineHarness(Lab.transparent(limits: limits))
        for i in 0..<100 {
            let out = h.send(tcp4(src: "10.1.0.2:\(30_000 + i)", dst: Lab.server, flags: .syn, seq: 1))
            #expect(out.verdict == .forward)
        }
        #expect(h.engine.flowCount == 100)
        h.advance(seconds: 76)
        var remaining = [100]
        for _ in 0..<15 {
            h.expire()
            remaining.append(h.engine.flowCount)
        }
        // Exactly 7 per tick (every slot holds an expired flow), the last tick takes the rest.
        #expect(remaining == [100, 93, 86, 79, 72, 65, 58, 51, 44, 37, 30, 23, 16, 9, 2, 0])
        #expect(h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.flowsExpired == 100)
    }

    @Test("the sweep wraps around and finds flows in slots freed and reused")
    func sweepWrapsAndReusesSlots() throws {
        var limits = EngineLimits()
        limits.expirySweepPerTick = 3
        let h = EngineHarness(Lab.transparent(limits: limits))
        func syn(_ i: Int) { h.send(tcp4(src: "10.1.0.2:\(30_000 + i)", dst: Lab.server, flags: .syn, seq: 1)) }
        for i in 0..<10 { syn(i) }
        h.advance(seconds: 76)
        for _ in 0..<2 { h.expire() } // slots 0-5 freed, cursor at 6
        #expect(h.engine.flowCount == 4)
        for i in 10..<16 { syn(i) } // fresh flows take the freed slots 0-5
        #expect(h.engine.flowCount == 10)
        for _ in 0..<2 { h.expire() } // slots 6-9 (old) and 0-1 (fresh): only the 4 old go
        #expect(h.engine.flowCount == 6)
        h.advance(seconds: 76)
        for _ in 0..<4 { h.expire() }
        #expect(h.engine.flowCount == 0)
        #expect(h.engine.natPortsInUse == 0)
    }

    @Test("expireAll removes everything whose time is up in one pass")
    func expireAll() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        Conversation(device: "10.1.0.2:40001", nat: "10.2.0.1:61001").deviceSends(h, .syn, seq: 1)
        h.advance(seconds: 76)
        h.engine.expireAll(now: h.now)
        #expect(h.engine.flowCount == 1)
        h.advance(seconds: 7_440)
        h.engine.expireAll(now: h.now)
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
    }

    @Test("custom timeouts are honoured")
    func customTimeouts() throws {
        var limits = EngineLimits()
        limits.timeouts.embryonic = .milliseconds(1500)
        limits.timeouts.closedLinger = .zero
        let h = EngineHarness(Lab.transparent(limits: limits))
        c.deviceSends(h, .syn, seq: 1)
        h.advance(nanoseconds: 1_500_000_000)
        h.expire()
        #expect(h.engine.flowCount == 1)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0)
        let second = Conversation(nat: "10.2.0.1:61001") // next-fit: not the port just released
        second.deviceSends(h, .syn, seq: 1)
        second.deviceSends(h, .rst, seq: 2)
        h.expire() // zero linger: same instant is not yet "past"
        #expect(h.engine.flowCount == 1)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0)
    }
}
