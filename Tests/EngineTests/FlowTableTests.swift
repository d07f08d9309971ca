@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The flow table's slot indexes (open addressing, tombstones, rebuilds) stay consistent with
/// the slab through inserts, removals, aliases and promotions.
@Suite("Flow table indexes")
struct FlowTableTests {
    static func flow(_ i: Int) -> Flow {
        Flow(id: FlowID(UInt64(i) + 1), device: IPEndpoint(IPv4Address(0x0A01_0000 + UInt32(i / 50_000)), UInt16(10_000 + i % 50_000)),
             original: endpoint("10.2.0.2:80"), server: endpoint("10.2.0.2:80"), natPort: UInt16(1024 + i),
             state: .established, created: Instant(nanoseconds: 1), lastActivity: Instant(nanoseconds: 1))
    }
    static func key(_ f: Flow) -> DeviceSideKey { DeviceSideKey(device: f.device, original: f.original) }

    @Test("every flow is found by key, NAT port and id through churn; removed ones are gone")
    func churn() throws {
        var table = FlowTable()
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0xF10)
        var live: [Int: Int] = [:] // flow index -> slot
        for round in 0..<4 {
            for i in (round * 5_000)..<((round + 1) * 5_000) { live[i] = table.insert(Self.flow(i)) }
            for i in live.keys.sorted() where rng.next() % 2 == 0 {
                #expect(table.remove(slot: live[i]!)?.id == FlowID(UInt64(i) + 1))
                live[i] = nil
            }
        }
        #expect(table.count == live.count)
        for i in 0..<20_000 {
            let f = Self.flow(i)
            let want = live[i]
            #expect(table.slot(deviceKey: Self.key(f)) == want)
            #expect(table.slot(natPort: f.natPort) == want)
            #expect(table.slot(id: f.id) == want)
        }
    }

    @Test("an alias finds the flow until it is dropped or promoted; the old key goes with the promotion")
    func aliases() throws {
        var table = FlowTable()
        let s = table.insert(Self.flow(1))
        let old = Self.key(Self.flow(1))
        let alias = DeviceSideKey(device: endpoint("10.1.9.9:555"), original: old.original)
        table.setAlias(alias, slot: s)
        #expect(table.slot(deviceKey: alias) == s && table.slot(deviceKey: old) == s)
        table.setAlias(nil, slot: s)
        #expect(table.slot(deviceKey: alias) == nil && table.slot(deviceKey: old) == s)
        table.setAlias(alias, slot: s)
        table.promoteAlias(slot: s)
        #expect(table.slot(deviceKey: alias) == s && table.slot(deviceKey: old) == nil)
        #expect(table[slot: s]?.device == alias.device && table[slot: s]?.aliasKey == nil)
        table.remove(slot: s)
        #expect(table.slot(deviceKey: alias) == nil && table.count == 0)
    }

    @Test("the slab grows no further than the table's limit")
    func slabLimit() {
        var table = FlowTable(maxFlows: 1_000)
        for i in 0..<1_000 { _ = table.insert(Self.flow(i)) }
        #expect(table.slots.capacity < 1_100)
    }

    @Test("a flow record stays small (the slab's size per flow)")
    func recordSize() {
        // 192 while endpoints were IPv4 only (8 bytes each); an endpoint of either family takes
        // 20 bytes and 4 of padding, which the record fills with 4-byte fields: 240.
        #expect(SpliceEngine.flowRecordBytes <= 240)
    }
}
