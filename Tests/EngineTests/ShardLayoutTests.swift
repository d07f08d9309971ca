@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

@Suite("Shard layout (multi-queue)")
struct ShardLayoutTests {
    @Test("NAT sub-ranges partition the range, and every port's shard is the one whose sub-range holds it")
    func natSubRanges() throws {
        for (range, count) in [(PortRange(61_000, 65_534), 4), (PortRange(1000, 1006), 7), (PortRange(5000, 5010), 3), (PortRange(7, 7), 1)] {
            let layout = try #require(ShardLayout(index: 0, count: count, natPorts: range, seed: 1))
            var next = Int(range.lower)
            for s in 0..<count {
                let sub = layout.natPorts(of: s)
                #expect(Int(sub.lower) == next && sub.count >= 1)
                next = Int(sub.upper) + 1
                for p in sub.lower...sub.upper { #expect(layout.shard(ofNATPort: p) == s) }
            }
            #expect(next == Int(range.upper) + 1)
            #expect(layout.shard(ofNATPort: range.lower - 1) == nil)
        }
        #expect(ShardLayout(index: 0, count: 8, natPorts: PortRange(10, 12), seed: 0) == nil)
    }

    @Test("ids are unique across shards and name their shard; one shard counts 1, 2, 3")
    func ids() throws {
        let layout = try #require(ShardLayout(index: 0, count: 3, natPorts: EngineConfig.defaultNATPorts, seed: 9))
        var seen = Set<UInt64>()
        for s in 0..<3 {
            for local in UInt64(1)...50 {
                let id = layout.shard(s).globalID(local: local)
                #expect(seen.insert(id).inserted)
                #expect(layout.shard(ofID: id) == s)
            }
        }
        let single = ShardLayout.single(natPorts: EngineConfig.defaultNATPorts)
        #expect((1...3).map { single.globalID(local: $0) } == [1, 2, 3])
    }

    @Test("an engine on a shard takes NAT ports and ids of its own share only")
    func engineShare() throws {
        let config = EngineConfig(nat: address("10.2.0.1"), intercepts: [PortRange(8080, 8080)])
        let layout = try #require(ShardLayout(index: 0, count: 2, natPorts: config.natPorts, seed: 3)).shard(1)
        let engine = SpliceEngine(config: config, shard: layout)
        let batch = PacketBatch(capacity: 4, maxPacket: 2048)
        let generated = PacketBatch(capacity: 4, maxPacket: 2048)
        batch.append(tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:8080", flags: .syn, seq: 1, options: [.maximumSegmentSize(1460)]))
        batch.append(tcp4(src: "10.1.0.2:40001", dst: "10.2.0.2:8080", flags: .syn, seq: 1, options: [.maximumSegmentSize(1460)]))
        batch.markDropped(1) // handed to another shard: not this engine's
        engine.process(batch, now: Instant(nanoseconds: 1), generated: generated)
        let flows = engine.flowSummaries(now: Instant(nanoseconds: 1))
        #expect(flows.count == 1)
        #expect(flows.first?.id == FlowID(2))
        #expect(flows.first.map { layout.ownNATPorts.contains($0.nat.port) } == true)
        #expect(engine.status().natPortsCapacity == layout.ownNATPorts.count)
        #expect(engine.holds(device: endpoint("10.1.0.2:40000"), original: endpoint("10.2.0.2:8080")))
        #expect(!engine.holds(device: endpoint("10.1.0.2:40001"), original: endpoint("10.2.0.2:8080")))
    }

    @Test("a packet's shard key: NAT port for the server side, the 4-tuple for devices")
    func shardKey() {
        let nat = address("10.2.0.1")
        let server = tcp4(src: "10.2.0.2:8080", dst: "10.2.0.1:61005", flags: [.syn, .ack])
        let device = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:8080", flags: .syn)
        let ack = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:8080", flags: .ack)
        func key(_ b: [UInt8]) -> ShardKey { b.withUnsafeBytes { ShardKey($0, nat: nat, natPorts: EngineConfig.defaultNATPorts) } }
        #expect(key(server) == .natPort(61005))
        #expect(key(device) == .device(source: endpoint("10.1.0.2:40000"), destination: endpoint("10.2.0.2:8080"), openingSyn: true))
        #expect(key(ack) == .device(source: endpoint("10.1.0.2:40000"), destination: endpoint("10.2.0.2:8080"), openingSyn: false))
        #expect(key([0x60, 0, 0]) == .none)
    }

    @Test("a fragment has no shard key: a later piece's 'ports' are payload bytes (it stays where it was read)")
    func fragmentsHaveNoShardKey() {
        let nat = address("10.2.0.1")
        func key(_ b: [UInt8]) -> ShardKey { b.withUnsafeBytes { ShardKey($0, nat: nat, natPorts: EngineConfig.defaultNATPorts) } }
        let whole = tcp4(src: "10.2.0.2:8080", dst: "10.2.0.1:61005", payload: Array(repeating: 0xEE, count: 600), id: 5, dontFragment: false)
        for piece in ipv4Fragments(whole, sizes: [304]) {
            #expect(piece.withUnsafeBytes { HeaderPeek($0).isIPv4Fragment })
            #expect(piece.withUnsafeBytes { HeaderPeek($0).ipv4TCP == nil })
            #expect(key(piece) == .none)
        }
        #expect(!whole.withUnsafeBytes { HeaderPeek($0).isIPv4Fragment })
        #expect(key(whole) == .natPort(61005))
    }
}
