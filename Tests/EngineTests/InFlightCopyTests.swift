@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The copy of the server's bytes in flight toward the device (DESIGN §5): what a migration
/// resends to the new device without asking the server to retransmit.
@Suite("In-flight copy")
struct InFlightCopyTests {
    let c = Conversation()

    /// The bytes the flow's copy holds, from its start to its end.
    func held(_ h: EngineHarness) -> [UInt8]? {
        guard let copy = h.internalFlow()?.inFlight else { return nil }
        return copy.bytes(from: copy.start, length: copy.count)
    }

    @Test("server data is recorded, device ACKs trim it, retransmissions add nothing")
    func recordTrimRetransmit() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        let data = pattern(3000)
        // Device data is never recorded (the copy is of what goes toward the device).
        c.deviceSends(h, [.psh, .ack], seq: 1001, ack: 5001, payload: pattern(100))
        #expect(h.internalFlow()?.inFlight == nil)

        c.serverSends(h, .ack, seq: 5001, ack: 1101, payload: Array(data[0..<1000]))
        c.serverSends(h, .ack, seq: 6001, ack: 1101, payload: Array(data[1000..<2000]))
        #expect(h.flow()?.inFlightBytes == 2000)
        #expect(held(h) == Array(data[0..<2000]))
        #expect(h.internalFlow()?.inFlight?.start == SeqNumber(5001))

        c.deviceSends(h, .ack, seq: 1101, ack: 5601)
        #expect(h.flow()?.inFlightBytes == 1400)
        #expect(held(h) == Array(data[600..<2000]))

        // A whole retransmission, then a duplicate of acknowledged bytes: nothing added.
        c.serverSends(h, .ack, seq: 6001, ack: 1101, payload: Array(data[1000..<2000]))
        c.serverSends(h, .ack, seq: 5001, ack: 1101, payload: Array(data[0..<1000]))
        #expect(h.flow()?.inFlightBytes == 1400)
        // A retransmission that overlaps the end: only the new part is added.
        c.serverSends(h, .ack, seq: 6501, ack: 1101, payload: Array(data[1500..<3000]))
        #expect(held(h) == Array(data[600..<3000]))
        #expect(h.internalFlow()?.inFlight?.missedBytes == 0)

        // An old ACK changes nothing; the full ACK empties the copy.
        c.deviceSends(h, .ack, seq: 1101, ack: 5301)
        #expect(h.flow()?.inFlightBytes == 2400)
        c.deviceSends(h, .ack, seq: 1101, ack: 8001)
        #expect(h.flow()?.inFlightBytes == 0)
    }

    @Test("a gap (bytes never seen) restarts the copy and counts missedBytes")
    func gapRestarts() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        c.serverSends(h, .ack, seq: 5001, ack: 1001, payload: pattern(600))
        // Bytes 5601..<6001 are lost before the proxy; the next segment starts at 6001.
        c.serverSends(h, .ack, seq: 6001, ack: 1001, payload: pattern(300, from: 1000))
        let copy = try #require(h.internalFlow()?.inFlight)
        #expect(copy.start == SeqNumber(6001) && copy.end == SeqNumber(6301))
        #expect(copy.missedBytes == 400 + 600) // the gap plus what the copy dropped
        #expect(held(h) == pattern(300, from: 1000))
        // The lost bytes' retransmission comes later: it is older than the copy, ignored.
        c.serverSends(h, .ack, seq: 5601, ack: 1001, payload: pattern(400, from: 600))
        #expect(h.internalFlow()?.inFlight?.count == 300)
    }

    @Test("the per-flow cap is respected")
    func perFlowCap() throws {
        var limits = EngineLimits()
        limits.inFlightPerFlow = 3000
        let h = EngineHarness(Lab.transparent(limits: limits))
        c.handshake(h)
        for i in 0..<4 {
            c.serverSends(h, .ack, seq: 5001 + UInt32(i) * 1000, ack: 1001, payload: pattern(1000, from: i * 1000))
            let copy = try #require(h.internalFlow()?.inFlight)
            #expect(copy.count <= 3000 && copy.storageBytes <= 3000)
        }
        #expect(h.engine.inFlightStorageBytes == 3000)
        // The device's ACK makes room again.
        c.deviceSends(h, .ack, seq: 1001, ack: 7001)
        #expect(h.flow()?.inFlightBytes == 1000)
        #expect(h.engine.inFlightStorageBytes == 3000)
    }

    @Test("a per-flow cap of 0 keeps no copy at all")
    func noCopy() throws {
        var limits = EngineLimits()
        limits.inFlightPerFlow = 0
        let h = EngineHarness(Lab.transparent(limits: limits))
        c.handshake(h)
        c.serverSends(h, .ack, seq: 5001, ack: 1001, payload: pattern(1000))
        #expect(h.internalFlow()?.inFlight == nil)
        #expect(h.engine.inFlightStorageBytes == 0)
    }

    @Test("the total budget is respected across flows; storage is released when flows go")
    func totalBudget() throws {
        var limits = EngineLimits()
        limits.inFlightPerFlow = 20_000
        limits.inFlightTotal = 50_000
        let h = EngineHarness(Lab.transparent(limits: limits))
        let flows = (0..<4).map { Conversation(device: "10.1.0.2:\(40_000 + $0)", nat: "10.2.0.1:\(61_000 + $0)") }
        for f in flows { f.handshake(h) }
        for round in 0..<25 {
            for f in flows {
                f.serverSends(h, .ack, seq: 5001 + UInt32(round) * 1000, ack: 1001, payload: pattern(1000, from: round))
                #expect(h.engine.inFlightStorageBytes <= 50_000)
            }
        }
        // The engine's total is the sum of what the copies hold.
        var sum = 0
        for case let flow? in h.engine.table.slots { sum += flow.inFlight?.storageBytes ?? 0 }
        #expect(sum == h.engine.inFlightStorageBytes)
        #expect(h.engine.inFlightStorageBytes <= 50_000)
        // Every flow still forwarded every byte, copied or not.
        for f in flows { #expect(h.flow(device: f.device)?.bytesToDevice == 25_000) }
        // Flows end: all storage comes back.
        for f in flows { f.deviceSends(h, .rst, seq: 1001) }
        h.advance(seconds: 31)
        h.expire()
        #expect(h.engine.flowCount == 0)
        #expect(h.engine.inFlightStorageBytes == 0)
    }

    // MARK: The copy on its own

    @Test("ring: wraps in storage and in sequence space")
    func ringWraps() {
        var copy = InFlightCopy(start: SeqNumber(0xFFFF_FFFC), cap: 8)
        ([0, 1, 2, 3, 4, 5] as [UInt8]).withUnsafeBytes { #expect(copy.record(seq: SeqNumber(0xFFFF_FFFC), payload: $0, budget: 100) == 8) }
        #expect(copy.count == 6 && copy.end == SeqNumber(2))
        copy.acknowledge(SeqNumber(0))
        #expect(copy.count == 2 && copy.start == SeqNumber(0))
        // 6 more bytes: room for exactly 6, written across the end of the ring storage.
        ([6, 7, 8, 9, 10, 11] as [UInt8]).withUnsafeBytes { #expect(copy.record(seq: SeqNumber(2), payload: $0, budget: 100) == 0) }
        #expect(copy.count == 8 && copy.storageBytes == 8)
        #expect(copy.bytes(from: SeqNumber(0), length: 8) == [4, 5, 6, 7, 8, 9, 10, 11])
        #expect(copy.bytes(from: SeqNumber(3), length: 3) == [7, 8, 9])
        #expect(copy.bytes(from: SeqNumber(7), length: 2) == nil) // past the end
        #expect(copy.bytes(from: SeqNumber(0xFFFF_FFFF), length: 1) == nil) // before the start
        // Full: the next in-order byte is not kept; the copy stays as it is.
        ([12] as [UInt8]).withUnsafeBytes { _ = copy.record(seq: SeqNumber(8), payload: $0, budget: 100) }
        #expect(copy.count == 8 && copy.end == SeqNumber(8))
        copy.acknowledge(SeqNumber(5))
        #expect(copy.bytes(from: SeqNumber(5), length: 3) == [9, 10, 11])
        #expect(copy.releaseStorage() == 8)
        #expect(copy.count == 0 && copy.storageBytes == 0)
    }

    @Test("a budget smaller than the segment: storage never exceeds it, and what fits is kept")
    func budgetLimited() {
        var copy = InFlightCopy(start: SeqNumber(100), cap: 100_000)
        let grew = pattern(1000).withUnsafeBytes { copy.record(seq: SeqNumber(100), payload: $0, budget: 500) }
        #expect(grew == 500 && copy.storageBytes == 500)
        #expect(copy.count == 500)
        #expect(copy.bytes(from: SeqNumber(100), length: 500) == pattern(500))
        // No budget at all: nothing grows.
        var empty = InFlightCopy(start: SeqNumber(0), cap: 100_000)
        let none = pattern(10).withUnsafeBytes { empty.record(seq: SeqNumber(0), payload: $0, budget: 0) }
        #expect(none == 0 && empty.storageBytes == 0 && empty.count == 0)
    }

    @Test("storage grows by doubling from 16 KiB up to the cap, keeping the bytes in order")
    func growth() {
        var copy = InFlightCopy(start: SeqNumber(0), cap: 40_000)
        var seq: UInt32 = 0
        var sizes: [Int] = []
        for i in 0..<40 {
            pattern(1000, from: i * 1000).withUnsafeBytes { _ = copy.record(seq: SeqNumber(seq), payload: $0, budget: .max) }
            seq += 1000
            if i == 9 { copy.acknowledge(SeqNumber(5000)) } // move head so growth re-lays a wrapped ring
            if sizes.last != copy.storageBytes { sizes.append(copy.storageBytes) }
        }
        #expect(sizes == [16_384, 32_768, 40_000])
        #expect(copy.start == SeqNumber(5000))
        #expect(copy.count == 35_000)
        #expect(copy.bytes(from: SeqNumber(5000), length: 35_000) == pattern(35_000, from: 5000))
    }

    // MARK: The flow's own accessors (the per-packet path)

    static func bareFlow() -> Flow {
        Flow(id: FlowID(1), device: endpoint("10.1.0.2:40000"), original: endpoint("10.2.0.2:80"), server: endpoint("10.2.0.2:80"),
             natPort: 1024, state: .established, created: Instant(nanoseconds: 1), lastActivity: Instant(nanoseconds: 1))
    }

    @Test("a flow's first recorded segment starts its copy there; acks trim it in place; without a copy an ack changes nothing")
    func flowRecordAndAcknowledge() {
        var flow = Self.bareFlow()
        flow.acknowledgeInFlight(SeqNumber(9000))
        #expect(flow.inFlight == nil)
        let data = pattern(1000)
        let grew = data.withUnsafeBytes { flow.recordInFlight(seq: SeqNumber(5001), payload: $0, cap: 4096, budget: 1 << 20) }
        #expect(grew > 0 && grew == flow.inFlight?.storageBytes)
        #expect(flow.inFlight?.start == SeqNumber(5001) && flow.inFlight?.count == 1000 && flow.inFlight?.cap == 4096)
        // The next segment joins the same copy (no restart at its own seq).
        let more = data.withUnsafeBytes { flow.recordInFlight(seq: SeqNumber(6001), payload: $0, cap: 4096, budget: 1 << 20) }
        #expect(more >= 0 && flow.inFlight?.start == SeqNumber(5001) && flow.inFlight?.count == 2000)
        flow.acknowledgeInFlight(SeqNumber(5601))
        #expect(flow.inFlight?.start == SeqNumber(5601) && flow.inFlight?.count == 1400)
        #expect(flow.inFlight.map { $0.bytes(from: $0.start, length: 400) } == Array(data[600..<1000]))
    }

    @Test("no budget left: the copy starts but holds nothing, and says so (0 bytes grown)")
    func flowRecordWithoutBudget() {
        var flow = Self.bareFlow()
        let grew = pattern(500).withUnsafeBytes { flow.recordInFlight(seq: SeqNumber(1), payload: $0, cap: 4096, budget: 0) }
        #expect(grew == 0)
        #expect(flow.inFlight?.storageBytes == 0)
    }
}
