@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Adoption of each kind of flow (issue "Survive a proxy restart", unit tests): a restarted
/// engine that adopts the checkpoint treats the next packets as the engine that wrote it.

/// Each packet through the engine that wrote the checkpoint (`original`) and through the one
/// that adopted it: both forward it, as the same bytes, packet after packet.
func expectSameRewrites(_ packets: [[UInt8]], original: ([UInt8]) -> Outcome, restarted: SpliceEngine, now: Instant,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    let out = PacketBatch(capacity: 8, maxPacket: 2048)
    for (i, packet) in packets.enumerated() {
        let before = original(packet)
        var bytes = packet
        out.removeAll()
        let verdict = bytes.withUnsafeMutableBytes { restarted.process($0, now: now, generated: out) }
        #expect(before.verdict == .forward && verdict == before.verdict, "packet \(i): \(before.verdict), then \(verdict)", sourceLocation: sourceLocation)
        #expect(bytes == before.bytes, "packet \(i): \((try? DecodedTCP4(bytes)).map(String.init(describing:)) ?? "?") vs \((try? before.decoded).map(String.init(describing:)) ?? "?")",
                sourceLocation: sourceLocation)
    }
}

extension KernelPathTests {
    @Test("a flow in the kernel is adopted in the kernel: counted, no copy kept, and its FIN asks for it back")
    func adoptedInKernel() throws {
        let h = try handedOver()
        let restarted = SpliceEngine(config: h.engine.config)
        #expect(restarted.adopt(h.engine.checkpoints(), now: h.now).adopted == [h.flowID])
        #expect(restarted.kernelPathFlowCount == 1)
        #expect(restarted.kernelPathFlows().map(\.id) == [h.flowID])
        var data = h.fromServer(at: 30 * 1448, ack: 120, length: 1448)
        let out = PacketBatch(capacity: 4, maxPacket: 2048)
        #expect(data.withUnsafeMutableBytes { restarted.process($0, now: h.now, generated: out) } == .forward)
        #expect(restarted.table.slot(id: h.flowID).flatMap { restarted.table[slot: $0] }?.inFlight == nil)
        var fin = h.fromServer([.ack, .fin], at: 31 * 1448, ack: 120)
        #expect(fin.withUnsafeMutableBytes { restarted.process($0, now: h.now, generated: out) } == .forward)
        #expect(restarted.takeKernelPathChanges().leave.map(\.id) == [h.flowID])
    }
}

@Suite("Checkpoint: adoption of a service-mode flow")
struct CheckpointServiceAdoptionTests {
    @Test("a service-mode flow (VIP to server) is adopted and rewritten as before, both ways")
    func serviceFlow() throws {
        let h = EngineHarness(Lab.service())
        let c = Conversation(original: Lab.vip)
        c.handshake(h)
        let restarted = SpliceEngine(config: Lab.service())
        let checkpoints = h.engine.checkpoints()
        #expect(checkpoints.map(\.original) == [IPEndpoint(endpoint(Lab.vip))])
        #expect(restarted.adopt(checkpoints, now: h.now).adopted == checkpoints.map(\.id))
        let packets = [
            c.device([.ack, .psh], seq: 1001, ack: 5001, payload: pattern(100)),
            c.server(.ack, seq: 5001, ack: 1101, payload: pattern(300)),
            c.device(.ack, seq: 1101, ack: 5301),
            c.device([.ack, .fin], seq: 1101, ack: 5301),
        ]
        expectSameRewrites(packets, original: h.send, restarted: restarted, now: h.now)
        #expect(restarted.checkpoints().map(\.state) == h.engine.checkpoints().map(\.state))
    }
}

extension MigrationResumeTests {
    @Test("a migration in each phase leaves the checkpoint as before it (the old device, its offsets): a restart never adopts a half-done migration")
    func checkpointNeverHalfMigrated() throws {
        let h = established()
        let before = h.engine.checkpoints()
        let (mid, _) = try h.migrate()
        #expect(h.engine.checkpoints() == before, "phase \(String(describing: h.report(mid)?.phase))")
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .oldDeviceCut)
        for o in h.serverSends(cut, cut + 2 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
        #expect(h.engine.checkpoints() == before)
        _ = try h.phoneConnects(cut: cut)
        #expect(h.report(mid)?.phase == .newDeviceConnected || h.report(mid)?.phase == .cacheDrained)
        #expect(h.engine.checkpoints() == before)
    }

    @Test("a rolled-back migration leaves the checkpoint's flow as it was")
    func rolledBackCheckpoint() throws {
        let h = established()
        let before = h.engine.checkpoints()
        let (mid, _) = try h.migrate(deadline: .seconds(2))
        _ = try h.timers()
        h.advance(milliseconds: 2_500)
        _ = try h.timers()
        h.send(h.fromLaptop(at: 120, ack: cut))
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .rolledBack)
        #expect(h.engine.checkpoints() == before)
    }
}
