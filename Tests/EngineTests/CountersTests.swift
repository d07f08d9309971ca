import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Every packet read gets exactly one verdict, and the counters say which.
@Suite("Counters")
struct CountersTests {
    @Test("packetsIn = forwarded + passed through + drops; bytes and status follow")
    func addUp() throws {
        let h = EngineHarness(Lab.transparent())
        let c = Conversation()
        var bytesIn: UInt64 = 0, bytesForwarded: UInt64 = 0
        func send(_ p: [UInt8], _ expected: SpliceEngine.Verdict) {
            let out = h.send(p)
            #expect(out.verdict == expected)
            bytesIn += UInt64(p.count)
            if expected == .forward { bytesForwarded += UInt64(p.count) }
        }
        send(c.device(.syn, seq: 1000), .forward)
        send(c.server([.syn, .ack], seq: 5000, ack: 1001), .forward)
        send(c.device(.ack, seq: 1001, ack: 5001), .forward)
        send(c.device([.psh, .ack], seq: 1001, ack: 5001, payload: pattern(333)), .forward)
        send(tcp4(src: "10.1.0.9:1234", dst: Lab.server, seq: 1, ack: 1), .passThrough)
        send(tcp4(src: "10.1.0.9:1234", dst: "10.2.0.2:22", flags: .syn, seq: 1), .passThrough)
        send([0x45, 0x00], .drop(.truncated))
        send(Array(c.device(.ack, seq: 1, ack: 1).dropLast(1)), .drop(.truncated))
        send(tcp4(src: Lab.server, dst: "10.2.0.1:61999", seq: 1, ack: 1), .drop(.noFlow))
        send(tcp4(src: "10.2.0.3:8080", dst: Lab.firstNAT, seq: 1, ack: 1), .drop(.unexpectedSource))

        let k = h.engine.counters
        #expect(k.packetsIn == 10)
        #expect(k.packetsForwarded == 4 && k.packetsPassedThrough == 2 && k.totalDrops == 4)
        #expect(k[.truncated] == 2 && k[.noFlow] == 1 && k[.unexpectedSource] == 1)
        #expect(k.packetsIn == k.packetsForwarded + k.packetsPassedThrough + k.totalDrops)
        #expect(k.bytesIn == bytesIn && k.bytesForwarded == bytesForwarded)

        let s = h.engine.status()
        #expect(s.packetsIn == 10 && s.packetsForwarded == 4 && s.packetsPassedThrough == 2)
        #expect(s.drops == ["truncated": 2, "no_flow": 1, "unexpected_source": 1])
        #expect(s.flows == 1 && s.natPortsInUse == 1 && s.natPortsCapacity == EngineConfig.defaultNATPorts.count)
        #expect(s.flowsCreated == 1 && s.flowsClosed == 0 && s.flowsExpired == 0)
        #expect(s.bytesIn == bytesIn)
    }

    @Test("drop reasons: one counter slot each, labels as the metrics use them")
    func dropReasonLabels() {
        #expect(DropReason.allCases.count == Set(DropReason.allCases.map(\.rawValue)).count)
        var k = EngineCounters()
        for (i, r) in DropReason.allCases.enumerated() { k[r] = UInt64(i + 1) }
        for (i, r) in DropReason.allCases.enumerated() { #expect(k[r] == UInt64(i + 1)) }
        #expect(DropReason.natPortsExhausted.rawValue == "nat_ports_exhausted")
        #expect(DropReason.flowTableFull.rawValue == "flow_table_full")
        for e in WireError.allCases { #expect(DropReason(e).rawValue == e.rawValue) }
    }

    @Test("flowSummaries: what tsmp flows shows, sorted by id")
    func summaries() throws {
        let h = EngineHarness(Lab.transparent())
        Conversation(device: "10.1.0.2:40001", nat: "10.2.0.1:61000").deviceSends(h, .syn, seq: 1)
        h.advance(seconds: 2)
        Conversation(device: "10.1.0.2:40000", nat: "10.2.0.1:61001").deviceSends(h, .syn, seq: 1)
        h.advance(seconds: 1)
        let list = h.engine.flowSummaries(now: h.now)
        #expect(list.map(\.id) == [FlowID(1), FlowID(2)])
        #expect(list.map(\.device) == [endpoint("10.1.0.2:40001"), endpoint("10.1.0.2:40000")])
        #expect(list.map(\.ageSeconds) == [3, 1])
        #expect(list.map(\.nat) == [endpoint("10.2.0.1:61000"), endpoint("10.2.0.1:61001")])
    }
}
