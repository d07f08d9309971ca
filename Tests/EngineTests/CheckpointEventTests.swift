@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The checkpoint follows the flows (issue "Survive a proxy restart", item 1): the engine notes
/// a flow's durable changes at its choke points, the driver appends them after each call, and
/// the appended records, read back, are the engine's flows at every step.
extension MigrationResumeTests {
    @Test("flow events, and only they, append records; read back they are the engine's flows: created, established, spliced, reset, removed")
    func flowEventsAppendRecords() throws {
        let h = MigrationHarness()
        h.engine.recordsCheckpointChanges = true
        var file = CheckpointCodec.header(setup: 1)
        func readBack() throws -> [FlowCheckpoint] {
            file += h.engine.takeCheckpointRecords()
            return try CheckpointCodec.decode(file, setup: 1).flows
        }
        h.handshake()
        #expect(h.engine.hasCheckpointChanges)
        #expect(try readBack() == h.engine.checkpoints())
        #expect(h.engine.checkpoints().map(\.state) == [.established])

        // Data is not an event: nothing to append, packet after packet.
        h.send(h.fromLaptop(at: 0, ack: 0, length: 120))
        for _ in h.serverSends(0, cut, ack: 120) {}
        h.send(h.fromLaptop(at: 120, ack: cut))
        #expect(!h.engine.hasCheckpointChanges)
        #expect(h.engine.takeCheckpointRecords().isEmpty)

        // The splice changes the device, the offsets and what the device lacks.
        let before = try #require(h.engine.checkpoints().first)
        _ = try spliced(h)
        let afterSplice = try readBack()
        #expect(afterSplice == h.engine.checkpoints())
        let spliced = try #require(afterSplice.first)
        #expect(spliced.device == h.phone && before.device != spliced.device)
        #expect(spliced.seqOffsetToServer != before.seqOffsetToServer)

        // A reset, then the flow's removal: "gone", and a restart adopts nothing.
        h.send(h.fromServer(.rst, at: cut + 3 * 1448, ack: 120))
        #expect(try readBack().map(\.state) == [.reset])
        h.engine.expire(now: Instant(nanoseconds: h.now.nanoseconds + 3_600_000_000_000))
        #expect(h.engine.flowCount == 0)
        #expect(try readBack().isEmpty)
    }

    @Test("without a checkpoint to feed, the engine notes nothing")
    func noCheckpointNoNotes() {
        let h = established()
        #expect(!h.engine.hasCheckpointChanges)
        #expect(h.engine.takeCheckpointRecords().isEmpty)
    }

    @Test("a shard's header carries its layout; a header claiming shard 2 of 2 is not a checkpoint")
    func shardHeader() throws {
        let shard = CheckpointCodec.Shard(index: 1, count: 2, seed: 0xFEED_F00D_0000_0001)
        let bytes = CheckpointCodec.snapshot(setup: 9, shard: shard, flows: [])
        #expect(try CheckpointCodec.decode(bytes, setup: 9).shard == shard)
        #expect(try CheckpointCodec.decode(CheckpointCodec.header(setup: 9), setup: 9).shard == .single)
        let impossible = CheckpointCodec.header(setup: 9, shard: CheckpointCodec.Shard(index: 2, count: 2, seed: 0))
        #expect(throws: CheckpointError.notACheckpoint) { try CheckpointCodec.decode(impossible, setup: 9) }
    }

    @Test("the setup fingerprint changes with every option a flow depends on, and is stable")
    func setupFingerprint() {
        let config = MigrationLab.config()
        let base = config.checkpointSetup(shards: 2)
        #expect(base == config.checkpointSetup(shards: 2))
        var other = config
        other.natPorts = PortRange(config.natPorts.lower, config.natPorts.upper - 1)
        var services = config
        services.services = [ServiceMapping("198.51.100.7:443=203.0.113.5:443")!]
        var intercepts = config
        intercepts.intercepts = [PortRange(1, 2)]
        var nat = config
        nat.nat = IPv4Address(192, 0, 2, 99)
        let all = [base, config.checkpointSetup(shards: 1), other.checkpointSetup(shards: 2), services.checkpointSetup(shards: 2),
                   intercepts.checkpointSetup(shards: 2), nat.checkpointSetup(shards: 2)]
        #expect(Set(all).count == all.count)
    }
}
