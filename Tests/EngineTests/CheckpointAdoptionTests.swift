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
    @Test("a migration still waiting for its flow's state (just back from the kernel) holds nothing: the checkpoint names it, a restart reports it rolled back and adopts the flow plain")
    func awaitingMigrationHoldsNothing() throws {
        let h = try handedOver()
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        h.engine.recordsCheckpointChanges = true
        _ = h.engine.takeCheckpointRecords()
        let (result, _) = try h.startMigration()
        let mid = try result.get()
        #expect(h.report(mid)?.phase == .requested)
        #expect(h.engine.hasCheckpointChanges)   // its start is a flow event
        let checkpoints = h.engine.checkpoints()
        #expect(checkpoints.map(\.heldByMigration) == [false] && checkpoints.first?.freeze == nil && checkpoints.first?.held == nil)
        #expect(checkpoints.first?.migrationID == mid)
        let restarted = SpliceEngine(config: h.engine.config)
        let read = try CheckpointCodec.decode(CheckpointCodec.snapshot(setup: 1, flows: checkpoints), setup: 1).flows
        #expect(restarted.adopt(read, now: h.now).adopted == [h.flowID])
        let report = try #require(restarted.migrationReport(mid, now: h.now))
        #expect(report.phase == .rolledBack && report.reason?.contains("before it paused") == true)
        #expect(restarted.activeMigrationCount == 0 && restarted.interruptedMigrationCount == 0)
        #expect(restarted.checkpoints().first?.migrationID == nil)
    }

    @Test("a flow in the kernel is adopted in the kernel: counted, no copy kept, and its FIN asks for it back")
    func adoptedInKernel() throws {
        let h = try handedOver()
        let restarted = SpliceEngine(config: h.engine.config)
        #expect(restarted.adopt(h.engine.checkpoints(), now: h.now).adopted == [h.flowID])
        #expect(restarted.kernelPathFlowCount == 1)
        #expect(restarted.kernelPathFlows().map(\.id) == [h.flowID])
        // The kernel's counters keep it alive and counted, as before the restart.
        restarted.kernelPathCounters([KernelPathCounters(id: h.flowID, packetsToServer: 10, bytesToServer: 520,
                                                         packetsToDevice: 20, bytesToDevice: 1_000_000)], now: h.now)
        #expect(restarted.flowSummaries(now: h.now).first?.bytesToDevice == 1_000_000)
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
        #expect(checkpoints.map(\.original) == [endpoint(Lab.vip)])
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
    @Test("a migration in each phase leaves the checkpoint's flow as before it (the old device, its offsets), marked as held from the pause on, with what the pause fixed and every byte the proxy holds")
    func checkpointNeverHalfMigrated() throws {
        let h = established()
        let before = h.engine.checkpoints()
        var held = before
        let (mid, _) = try h.migrate()
        held[0].heldByMigration = true
        held[0].migrationID = mid
        held[0].migrationTarget = IPEndpoint(IPv4Endpoint(MigrationLab.phoneAddress, 0))
        func flowFacts(_ c: [FlowCheckpoint]) -> [FlowCheckpoint] { c.map { var f = $0; f.freeze = nil; f.held = nil; return f } }
        #expect(h.report(mid)?.phase == .paused)
        #expect(flowFacts(h.engine.checkpoints()) == held)
        let freeze = try #require(h.engine.checkpoints().first?.freeze)
        #expect(freeze.forwardedToDeviceEnd == SeqNumber(h.s(cut)) && freeze.forwardedToServerEnd == SeqNumber(h.l(120)))
        #expect(freeze.serverAckServerView == SeqNumber(h.l(120)) && freeze.newDevice == nil && !freeze.newDeviceSentData)
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .oldDeviceCut)
        for o in h.serverSends(cut, cut + 2 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
        #expect(flowFacts(h.engine.checkpoints()) == held)
        #expect(h.engine.checkpoints().first?.held == HeldBytes(start: SeqNumber(h.s(cut)), bytes: serverBytes(cut..<(cut + 2 * 1448))))
        _ = try h.phoneConnects(cut: cut)
        #expect(h.report(mid)?.phase == .newDeviceConnected || h.report(mid)?.phase == .cacheDrained)
        #expect(flowFacts(h.engine.checkpoints()) == held)
        #expect(h.engine.checkpoints().first?.freeze?.newDevice == MigrationLab.phone)
        #expect(h.engine.checkpoints().first?.freeze?.newDeviceSentData == false)
    }

    @Test("per event, the bytes a migration caches reach the checkpoint's records in the same call that pre-acknowledges them, once each")
    func heldBytesWrittenAhead() throws {
        let h = established()
        h.engine.recordsCheckpointChanges = true
        var file = CheckpointCodec.snapshot(setup: 1, flows: h.engine.checkpoints())
        let (mid, _) = try h.migrate()
        file += h.engine.takeCheckpointRecords()
        _ = try h.timers()
        file += h.engine.takeCheckpointRecords()
        var recordBytes: [Int] = []
        for i in 0..<3 {
            let o = h.send(h.fromServer(at: cut + i * 1448, ack: 120, length: 1448))
            // The pre-ack leaves with this call's output: its bytes are in this call's records.
            let acks = try o.packets().filter { $0.destination == MigrationLab.server }
            #expect(acks.last?.ack == SeqNumber(h.s(cut + (recordBytes.count + 1) * 1448)) && acks.last?.window == 0)
            let records = h.engine.takeCheckpointRecords()
            recordBytes.append(records.count)
            file += records
            let read = try CheckpointCodec.decode(file, setup: 1)
            #expect(read.flows.first?.held?.end == acks.last?.ack)
        }
        // Each segment's bytes once: a flow record and one held record of 1448 bytes.
        #expect(Set(recordBytes).count == 1 && recordBytes[0] < 1448 + 300)
        let read = try CheckpointCodec.decode(file, setup: 1)
        #expect(read.flows.first?.migrationID == mid)
        #expect(read.flows.first?.held == HeldBytes(start: SeqNumber(h.s(cut)), bytes: serverBytes(cut..<(cut + 3 * 1448))))
    }

    @Test("a flow adopted with its migration interrupted is taken back to its old device: probed, then the held bytes delivered byte-exact, the server's window reopened, rolled-back reported; the new device is refused")
    func interruptedMigrationRollsBack() throws {
        let h = established()
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        for o in h.serverSends(cut, cut + 3 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
        let checkpoints = try CheckpointCodec.decode(CheckpointCodec.snapshot(setup: 1, flows: h.engine.checkpoints()), setup: 1).flows
        let restarted = SpliceEngine(config: MigrationLab.config())
        let adoption = restarted.adopt(checkpoints, now: h.now)
        #expect(adoption.adopted == [h.flowID] && adoption.rollingBack == [h.flowID] && adoption.resetting.isEmpty)
        #expect(restarted.interruptedMigrationCount == 0 && restarted.activeMigrationCount == 1)
        // Another shard, to which the phone's own 4-tuple may hash, refuses it too.
        #expect(adoption.newDeviceRefusals.map(\.address) == [.v4(MigrationLab.phoneAddress)])
        let otherShard = SpliceEngine(config: MigrationLab.config())
        otherShard.refuseNewDevices(adoption.newDeviceRefusals)
        var stray = h.phoneSyn()
        let strayOut = PacketBatch(capacity: 4, maxPacket: 2048)
        #expect(stray.withUnsafeMutableBytes { otherShard.process($0, now: h.now, generated: strayOut) } == .drop(.interruptedMigration))
        #expect(strayOut.count == 1 && otherShard.flowCount == 0)
        #expect(restarted.migrationReport(mid, now: h.now)?.phase == .paused)
        let r = Restarted(engine: restarted, h: h)
        let feed = r.feed, timers = r.timers
        // The phone, whose sub-connection ended with the previous process: a RST, nothing passes.
        let (phoneVerdict, phoneOut) = feed(h.phoneSyn())
        #expect(phoneVerdict == .drop(.interruptedMigration) && phoneOut.count == 1 && phoneOut[0].flags.contains(.rst))
        #expect(phoneOut[0].destination == MigrationLab.phone)
        // Quiet: each end is asked for its state (blind probes); nothing of the cache goes out yet.
        h.advance(milliseconds: 30)
        let probes = timers()
        #expect(probes.count == 4 && probes.allSatisfy { $0.flags == .ack && $0.payload.isEmpty })
        #expect(probes.filter { $0.destination == MigrationLab.laptop }.count == 2)
        #expect(probes.filter { $0.destination == MigrationLab.server && $0.source == MigrationLab.nat }.count == 2)
        // The answers: the server's <SEQ=SND.NXT><ACK=RCV.NXT> (still frozen: window 0 back), the laptop's.
        let (serverVerdict, _) = feed(h.fromServer(at: cut + 3 * 1448, ack: 120))
        #expect(serverVerdict == .consumed)
        #expect(timers().isEmpty)
        #expect(feed(h.fromLaptop(at: 120, ack: cut)).0 == .consumed)
        // Both known: the rollback sends the laptop what it lacks, from the checkpoint's bytes.
        var got = StreamReceiver()
        var sent = timers().filter { $0.destination == MigrationLab.laptop && !$0.payload.isEmpty }
        #expect(restarted.migrationReport(mid, now: h.now)?.phase == .rolledBack || !sent.isEmpty)
        var rounds = 0
        var last: [DecodedTCP4] = []
        while !sent.isEmpty && rounds < 100 {
            rounds += 1
            let seg = sent.removeFirst()
            #expect(seg.source == MigrationLab.server && seg.checksumsValid && seg.ack == SeqNumber(h.l(120)))
            got.take(seg, offset: h.serverOffset(seg.seq))
            let (v, more) = feed(h.fromLaptop(at: 120, ack: got.expected(from: cut)))
            #expect(v == .consumed)
            last = more
            sent += more.filter { $0.destination == MigrationLab.laptop && !$0.payload.isEmpty }
        }
        #expect(difference(got.stream(cut, cut + 3 * 1448), serverBytes(cut..<(cut + 3 * 1448))) == nil)
        // Rolled back: the server gets the laptop's window again, acknowledging everything cached.
        let report = try #require(restarted.migrationReport(mid, now: h.now))
        #expect(report.phase == .rolledBack && report.reason?.contains("restart") == true)
        let reopen = try #require(last.first { $0.destination == MigrationLab.server })
        #expect(reopen.source == MigrationLab.nat && reopen.window > 0 && reopen.ack == SeqNumber(h.s(cut + 3 * 1448)))
        // The flow goes on: the server's next bytes are forwarded to the laptop.
        #expect(feed(h.fromServer(at: cut + 3 * 1448, ack: 120, length: 1000)).0 == .forward)
        #expect(restarted.activeMigrationCount <= 1 && restarted.flowCount == 1)
        #expect(restarted.checkpoints().first?.heldByMigration == false)
    }

    @Test("a flow adopted with its migration interrupted after the new device sent data on to the server is reset on each side as it next speaks, at the sequence number it expects, then removed; nothing passes")
    func interruptedMigrationIsReset() throws {
        let h = established()
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        for o in h.serverSends(cut, cut + 2 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
        _ = try h.phoneConnects(cut: cut)
        #expect(h.send(h.fromPhone(at: 0, ack: cut, length: 100)).verdict == .forward)
        let checkpoints = h.engine.checkpoints()
        #expect(checkpoints.map(\.heldByMigration) == [true])
        #expect(checkpoints.first?.freeze?.newDeviceSentData == true)
        #expect(checkpoints.first?.migrationID == mid)
        #expect(checkpoints.first?.migrationTarget == IPEndpoint(IPv4Endpoint(MigrationLab.phoneAddress, 0)))
        let restarted = SpliceEngine(config: MigrationLab.config())
        #expect(restarted.adopt(try CheckpointCodec.decode(CheckpointCodec.snapshot(setup: 1, flows: checkpoints), setup: 1).flows,
                                now: h.now).adopted == [h.flowID])
        #expect(restarted.interruptedMigrationCount == 1)
        // Its result, after the restart: aborted, and why.
        let report = try #require(restarted.migrationReport(mid, now: h.now))
        #expect(report.phase == .aborted && report.flow == h.flowID && report.oldDevice == MigrationLab.laptop)
        #expect(report.target.address == .v4(MigrationLab.phoneAddress) && report.reason?.contains("new device had sent data") == true)
        // Its id is not handed out again.
        let later = SpliceEngine(config: MigrationLab.config())
        _ = later.adopt(checkpoints, now: h.now)
        #expect(later.migrationReport(mid, now: h.now)?.phase == .aborted)
        let out = PacketBatch(capacity: 4, maxPacket: 2048)
        // The phone's next segment: a RST to it; nothing reaches the server.
        var phone = h.fromPhone(at: 100, ack: cut)
        #expect(phone.withUnsafeMutableBytes { restarted.process($0, now: h.now, generated: out) } == .drop(.interruptedMigration))
        #expect(try out.count == 1 && DecodedTCP4(out.bytes(0)).flags.contains(.rst))
        out.removeAll()
        // The server's zero-window probe: a RST to the server, from the NAT endpoint, at its ack.
        var probe = h.fromServer(at: cut + 2 * 1448, ack: 120, length: 1)
        let probeAck = try DecodedTCP4(probe).ack
        #expect(probe.withUnsafeMutableBytes { restarted.process($0, now: h.now, generated: out) } == .drop(.interruptedMigration))
        let toServer = try DecodedTCP4(out.bytes(0))
        #expect(out.count == 3 && toServer.flags == .rst && toServer.seq == probeAck)
        // ... and the laptop, which may have nothing to send, two blind probes to answer.
        let probes = try (1..<3).map { try DecodedTCP4(out.bytes($0)) }
        #expect(probes.allSatisfy { $0.flags == .ack && $0.destination == MigrationLab.laptop && $0.source == MigrationLab.server })
        #expect(probes[1].seq == probes[0].seq + (UInt32(1) << 31))
        #expect(toServer.source == MigrationLab.nat && toServer.destination == MigrationLab.server && toServer.checksumsValid)
        #expect(restarted.flowCount == 1)
        // The laptop's next ACK: a RST to the laptop, from the server's address, at its ack; the flow is gone.
        out.removeAll()
        var ack = h.fromLaptop(at: 120, ack: cut)
        let laptopAck = try DecodedTCP4(ack).ack
        #expect(ack.withUnsafeMutableBytes { restarted.process($0, now: h.now, generated: out) } == .drop(.interruptedMigration))
        let toLaptop = try DecodedTCP4(out.bytes(0))
        #expect(out.count == 1 && toLaptop.flags == .rst && toLaptop.seq == laptopAck)
        #expect(toLaptop.source == MigrationLab.server && toLaptop.destination == MigrationLab.laptop && toLaptop.checksumsValid)
        #expect(restarted.flowCount == 0 && restarted.interruptedMigrationCount == 0 && restarted.natPortsInUse == 0)
    }

    @Test("a restored migration whose flow never answers is ended at its deadline: reset on every side, aborted")
    func restoredMigrationDeadline() throws {
        let h = established()
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        let restarted = SpliceEngine(config: MigrationLab.config())
        _ = restarted.adopt(h.engine.checkpoints(), now: h.now)
        let out = PacketBatch(capacity: 64, maxPacket: 2048)
        h.advance(milliseconds: 10_001)
        restarted.runMigrationTimers(now: h.now, generated: out)
        let sent = try (0..<out.count).map { try DecodedTCP4(out.bytes($0)) }
        #expect(sent.filter { $0.flags.contains(.rst) }.count == 2)
        let report = try #require(restarted.migrationReport(mid, now: h.now))
        #expect(report.phase == .aborted && report.reason?.contains("restart") == true)
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

/// Where a restart can find a migration past its pause.
enum InterruptedPhase: String, CaseIterable, CustomTestStringConvertible {
    case paused, cut, newDeviceConnected, rollingBack
    var testDescription: String { rawValue }
}

extension MigrationResumeTests {
    /// A migration left in `phase` with server bytes cached; returns where the laptop's stream
    /// stands (what it has) and where the cache ends.
    func interrupted(in phase: InterruptedPhase) throws -> (h: H, mid: MigrationID, laptopHas: Int, end: Int) {
        switch phase {
        case .paused:
            // The laptop has not acknowledged the last two segments (lost on the way): the copy holds them.
            let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
            let (mid, _) = try h.migrate(settleWait: .seconds(5))
            for o in h.serverSends(4 * 1448, 6 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
            #expect(h.report(mid)?.phase == .paused)
            return (h, mid, 2 * 1448, 6 * 1448)
        case .cut, .newDeviceConnected:
            let h = established()
            let mid = try cutWithCache(h, cached: 3 * 1448)
            if phase == .newDeviceConnected {
                // The phone got the first flight of the cache but acknowledged none of it.
                let (_, flight) = try h.phoneConnects(cut: cut)
                #expect(!h.segmentsToPhone(flight).isEmpty && h.report(mid)?.phase == .newDeviceConnected)
            }
            return (h, mid, cut, cut + 3 * 1448)
        case .rollingBack:
            // The deadline passed; the cache went back toward the laptop, which took one segment of it.
            let h = established()
            let (mid, _) = try h.migrate(deadline: .seconds(2))
            _ = try h.timers()
            for o in h.serverSends(cut, cut + 3 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
            h.advance(milliseconds: 2_500)
            _ = try h.timers()
            #expect(h.send(h.fromLaptop(at: 120, ack: cut + 1448)).verdict == .consumed)
            #expect(h.report(mid)?.isFinished == false && h.report(mid)?.reason != nil)
            return (h, mid, cut + 1448, cut + 3 * 1448)
        }
    }

    @Test("a migration interrupted in each phase past its pause goes back to the old device after the restart, byte-exact from what it has, and is reported rolled back", arguments: InterruptedPhase.allCases)
    func interruptedInEachPhase(_ phase: InterruptedPhase) throws {
        let (h, mid, laptopHas, end) = try interrupted(in: phase)
        let checkpoints = try CheckpointCodec.decode(CheckpointCodec.snapshot(setup: 1, flows: h.engine.checkpoints()), setup: 1).flows
        #expect(checkpoints.first?.heldByMigration == true)
        let restarted = SpliceEngine(config: MigrationLab.config())
        #expect(restarted.adopt(checkpoints, now: h.now).rollingBack == [h.flowID])
        let r = Restarted(engine: restarted, h: h)
        h.advance(milliseconds: 30)
        #expect(r.timers().count == 4) // the blind probes
        _ = r.feed(h.fromServer(at: end, ack: 120))
        var sent = r.feed(h.fromLaptop(at: 120, ack: laptopHas)).1
        sent += r.timers()
        var got = StreamReceiver()
        var queue = sent.filter { $0.destination == MigrationLab.laptop && !$0.payload.isEmpty }
        #expect(queue.first.map { h.serverOffset($0.seq) } == laptopHas)
        var rounds = 0
        while !queue.isEmpty && rounds < 100 {
            rounds += 1
            let seg = queue.removeFirst()
            got.take(seg, offset: h.serverOffset(seg.seq))
            queue += r.feed(h.fromLaptop(at: 120, ack: got.expected(from: laptopHas))).1.filter { $0.destination == MigrationLab.laptop && !$0.payload.isEmpty }
        }
        #expect(difference(got.stream(laptopHas, end), serverBytes(laptopHas..<end)) == nil)
        let report = try #require(restarted.migrationReport(mid, now: h.now))
        #expect(report.phase == .rolledBack && report.reason?.contains("restart") == true)
        // The flow goes on there: the server's next bytes are forwarded.
        #expect(r.feed(h.fromServer(at: end, ack: 120, length: 100)).0 == .forward)
    }
}

/// An engine that adopted a checkpoint after a restart, driven at the harness's clock.
struct Restarted {
    let engine: SpliceEngine
    let h: MigrationHarness
    let out = PacketBatch(capacity: 64, maxPacket: 2048)

    /// Processes one packet: its verdict and what the engine generated.
    func feed(_ packet: [UInt8]) -> (SpliceEngine.Verdict, [DecodedTCP4]) {
        var bytes = packet
        out.removeAll()
        let verdict = bytes.withUnsafeMutableBytes { engine.process($0, now: h.now, generated: out) }
        return (verdict, (0..<out.count).compactMap { try? DecodedTCP4(out.bytes($0)) })
    }

    /// The migration timers: what they generated.
    func timers() -> [DecodedTCP4] {
        out.removeAll()
        engine.runMigrationTimers(now: h.now, generated: out)
        return (0..<out.count).compactMap { try? DecodedTCP4(out.bytes($0)) }
    }
}
