@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// NAT ports (next-fit, released when flows end) and the table's caps.
@Suite("NAT ports and limits")
struct NATAndLimitsTests {
    /// A device conversation from port `port` of 10.1.0.2 to the server, over NAT port `natPort`.
    func conversation(_ port: Int, natPort: Int) -> Conversation {
        Conversation(device: "10.1.0.2:\(port)", nat: "10.2.0.1:\(natPort)")
    }

    @Test("allocator: next-fit, a released port is not handed out again at once")
    func allocatorNextFit() {
        var a = NATPortAllocator(range: PortRange(100, 104))
        #expect(a.capacity == 5)
        #expect(a.allocate() == 100)
        #expect(a.allocate() == 101)
        a.release(100)
        #expect(!a.isInUse(100) && a.isInUse(101))
        #expect(a.allocate() == 102)
        #expect(a.allocate() == 103)
        #expect(a.allocate() == 104)
        #expect(a.allocate() == 100) // wrapped: the only free port
        #expect(a.allocate() == nil)
        #expect(a.inUse == 5)
        a.release(103)
        a.release(103) // twice: no effect
        a.release(99)  // outside the range: no effect
        #expect(a.inUse == 4)
        #expect(a.allocate() == 103)
    }

    @Test("allocator: the whole range up to port 65535")
    func allocatorTopOfRange() {
        var a = NATPortAllocator(range: PortRange(65_530, 65_535))
        var got: [UInt16] = []
        while let p = a.allocate() { got.append(p) }
        #expect(got == Array(65_530...65_535))
        a.release(65_535)
        #expect(a.allocate() == 65_535)
    }

    @Test("allocator: the first search starts at the given offset (modulo the range), wraps, and hands out every port once")
    func allocatorStartOffset() {
        var a = NATPortAllocator(range: PortRange(100, 104), start: 13)   // 13 % 5 = 3
        var got: [UInt16] = []
        while let p = a.allocate() { got.append(p) }
        #expect(got == [103, 104, 100, 101, 102])
        var b = NATPortAllocator(range: PortRange(100, 104))
        #expect(b.allocate() == 100)
    }

    @Test("engine: natPortStart moves the first NAT port a proxy hands out (modulo its range)")
    func engineNATPortStart() throws {
        var config = Lab.transparent(natPorts: PortRange(61_000, 61_999))
        config.natPortStart = 1_250   // 250 into the range
        let h = EngineHarness(config)
        conversation(40_000, natPort: 61_250).deviceSends(h, .syn, seq: 1)
        #expect(h.flow(device: "10.1.0.2:40000")?.nat == endpoint("10.2.0.1:61250"))
        conversation(40_001, natPort: 61_251).deviceSends(h, .syn, seq: 1)
        #expect(h.flow(device: "10.1.0.2:40001")?.nat == endpoint("10.2.0.1:61251"))
    }

    @Test("engine: a port released by an expired flow is not reused for the next flow")
    func engineNextFit() throws {
        let h = EngineHarness(Lab.transparent())
        conversation(40_000, natPort: 61_000).deviceSends(h, .syn, seq: 1)
        conversation(40_001, natPort: 61_001).deviceSends(h, .syn, seq: 1)
        conversation(40_000, natPort: 61_000).deviceSends(h, .rst, seq: 2)
        h.advance(seconds: 31)
        h.expire() // the RST flow is gone; the embryonic one (75 s) is not
        #expect(h.engine.flowCount == 1)
        #expect(!h.engine.natPorts.isInUse(61_000))
        conversation(40_002, natPort: 61_002).deviceSends(h, .syn, seq: 1)
        #expect(h.flow(device: "10.1.0.2:40002")?.nat == endpoint("10.2.0.1:61002"))
    }

    @Test("a tiny NAT range exhausts: natPortsExhausted, nothing leaks, a freed port is used again")
    func exhaustion() throws {
        let h = EngineHarness(Lab.transparent(natPorts: PortRange(61_000, 61_002)))
        for i in 0..<3 {
            conversation(40_000 + i, natPort: 61_000 + i).deviceSends(h, .syn, seq: 1)
        }
        #expect(h.engine.natPortsInUse == 3)
        let refused = conversation(40_003, natPort: 0).device(.syn, seq: 1)
        for _ in 0..<5 {
            let out = h.send(refused)
            #expect(out.verdict == .drop(.natPortsExhausted))
            #expect(out.generated.isEmpty)
        }
        #expect(h.engine.counters[.natPortsExhausted] == 5)
        #expect(h.engine.flowCount == 3 && h.engine.natPortsInUse == 3)
        #expect(h.engine.counters.flowsCreated == 3)
        #expect(h.engine.status().natPortsCapacity == 3)

        // Flow 40001 is reset and lingers out: its port is the only free one.
        conversation(40_001, natPort: 61_001).deviceSends(h, .rst, seq: 2)
        h.advance(seconds: 31)
        h.expire()
        #expect(h.engine.flowCount == 2 && h.engine.natPortsInUse == 2)
        conversation(40_003, natPort: 61_001).deviceSends(h, .syn, seq: 1)
        #expect(h.engine.flowCount == 3 && h.engine.natPortsInUse == 3)
        #expect(h.countersAddUp)
    }

    @Test("maxFlows: the next SYN is dropped with flowTableFull and takes no NAT port")
    func flowTableFull() throws {
        var limits = EngineLimits()
        limits.maxFlows = 2
        let h = EngineHarness(Lab.transparent(limits: limits))
        conversation(40_000, natPort: 61_000).deviceSends(h, .syn, seq: 1)
        conversation(40_001, natPort: 61_001).deviceSends(h, .syn, seq: 1)
        let out = h.send(conversation(40_002, natPort: 0).device(.syn, seq: 1))
        #expect(out.verdict == .drop(.flowTableFull))
        #expect(h.engine.counters[.flowTableFull] == 1)
        #expect(h.engine.flowCount == 2 && h.engine.natPortsInUse == 2)
        // Packets of existing flows still go through at the cap.
        conversation(40_000, natPort: 61_000).serverSends(h, [.syn, .ack], seq: 9, ack: 2)
        // Once a flow goes, a new one fits and takes the next port (next-fit).
        conversation(40_001, natPort: 61_001).deviceSends(h, .rst, seq: 2)
        h.advance(seconds: 31)
        h.expire()
        conversation(40_002, natPort: 61_002).deviceSends(h, .syn, seq: 1)
        #expect(h.engine.flowCount == 2)
    }

    @Test("1000 short connections through a 100-port range: all succeed, nothing left")
    func manyShortConnections() throws {
        var limits = EngineLimits()
        limits.expirySweepPerTick = 16
        let h = EngineHarness(Lab.transparent(natPorts: PortRange(61_000, 61_099), limits: limits))
        var natPortsSeen = Set<UInt16>()
        for i in 0..<1000 {
            let devicePort = 20_000 + i
            let syn = tcp4(src: "10.1.0.2:\(devicePort)", dst: Lab.server, flags: .syn, seq: 1)
            let out = h.send(syn)
            #expect(out.verdict == .forward)
            let natPort = try out.decoded.source.port
            natPortsSeen.insert(natPort)
            let conv = Conversation(device: "10.1.0.2:\(devicePort)", nat: "10.2.0.1:\(natPort)")
            conv.serverSends(h, [.syn, .ack], seq: 100, ack: 2)
            conv.deviceSends(h, .ack, seq: 2, ack: 101)
            conv.deviceSends(h, [.fin, .ack], seq: 2, ack: 101)
            conv.serverSends(h, [.fin, .ack], seq: 101, ack: 3)
            conv.deviceSends(h, .ack, seq: 3, ack: 102)
            // One connection every 400 ms: about 80 lingering at once (30 s linger), fewer than 100 ports.
            h.advance(nanoseconds: 400_000_000)
            h.expire()
        }
        h.advance(seconds: 31)
        for _ in 0..<10 { h.expire() }
        #expect(h.engine.flowCount == 0)
        #expect(h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.flowsCreated == 1000 && h.engine.counters.flowsClosed == 1000)
        #expect(natPortsSeen.count == 100)
        #expect(h.engine.counters.totalDrops == 0)
    }
}
