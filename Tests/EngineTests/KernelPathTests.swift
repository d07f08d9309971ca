@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The kernel path (`SpliceEngine+KernelPath`): which flows the engine hands to the kernel,
/// what it stops doing for them, and how a migration takes one back and stays exact.
@Suite("Kernel path: hand-over, take-back, migration after it")
struct KernelPathTests {
    typealias H = MigrationHarness
    static let policy = KernelPathPolicy(after: .seconds(1), minimumBytes: 4096, perTick: 16)

    /// Established with 8 segments downloaded and acknowledged, then `after` passes with the
    /// flow active; the sweep chooses it and the gateway confirms.
    func handedOver(laptop: EndOptions = .linux, server: EndOptions = .linux,
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> H {
        let h = H.established(downloaded: 8 * 1448, acked: 8 * 1448, laptop: laptop, server: server, kernelPath: Self.policy)
        h.advance(milliseconds: 500)
        h.engine.expire(now: h.now)
        #expect(h.engine.takeKernelPathChanges().enter.isEmpty, "chosen before `after`", sourceLocation: sourceLocation)
        h.advance(milliseconds: 600)
        h.send(h.fromServer(at: 8 * 1448, ack: 120)) // active within `after`
        h.engine.expire(now: h.now)
        let changes = h.engine.takeKernelPathChanges()
        let rule = try #require(changes.enter.first, sourceLocation: sourceLocation)
        #expect(changes.enter.count == 1 && changes.leave.isEmpty, sourceLocation: sourceLocation)
        #expect(rule == KernelPathFlow(id: h.flowID, device: MigrationLab.laptop, server: MigrationLab.server,
                                       nat: MigrationLab.nat), sourceLocation: sourceLocation)
        h.engine.kernelPathEntered([rule.id], now: h.now)
        #expect(h.summary?.inKernel == true && h.engine.kernelPathFlowCount == 1, sourceLocation: sourceLocation)
        #expect(h.internalFlow?.inFlight == nil, "the copy is dropped: acks bypass the engine", sourceLocation: sourceLocation)
        return h
    }

    @Test("a busy plain flow is chosen once `after` has passed; quiet, small or migrated flows are not")
    func choice() throws {
        _ = try handedOver()
        // Small: below minimumBytes.
        let small = H.established(downloaded: 1448, acked: 1448, kernelPath: Self.policy)
        small.advance(milliseconds: 1100)
        small.send(small.fromServer(at: 1448, ack: 120))
        small.engine.expire(now: small.now)
        #expect(small.engine.takeKernelPathChanges().enter.isEmpty)
        // Quiet: nothing within `after`.
        let quiet = H.established(downloaded: 8 * 1448, acked: 8 * 1448, kernelPath: Self.policy)
        quiet.advance(milliseconds: 1100)
        quiet.engine.expire(now: quiet.now)
        #expect(quiet.engine.takeKernelPathChanges().enter.isEmpty)
        // Off: no policy, never chosen.
        let off = H.established(downloaded: 8 * 1448, acked: 8 * 1448)
        off.advance(milliseconds: 1100)
        off.send(off.fromServer(at: 8 * 1448, ack: 120))
        off.engine.expire(now: off.now)
        #expect(off.engine.takeKernelPathChanges().enter.isEmpty)
    }

    @Test("in the kernel: no copy is kept of what still passes; a FIN asks for the flow back, once")
    func finTakesBack() throws {
        let h = try handedOver()
        // A packet that was queued before the hand-over is still forwarded, not copied.
        #expect(h.send(h.fromServer(at: 30 * 1448, ack: 120, length: 1448)).verdict == .forward)
        #expect(h.internalFlow?.inFlight == nil)
        let fin = h.send(h.fromServer([.ack, .fin], at: 31 * 1448, ack: 120))
        #expect(fin.verdict == .forward)
        let back = h.engine.takeKernelPathChanges()
        #expect(back.leave.map(\.id) == [h.flowID] && back.enter.isEmpty)
        h.send(h.fromServer([.ack, .fin], at: 31 * 1448, ack: 120)) // retransmitted FIN
        #expect(h.engine.takeKernelPathChanges().leave.isEmpty)
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        #expect(h.summary?.inKernel == nil && h.engine.kernelPathFlowCount == 0)
    }

    @Test("the kernel's counters keep a flow alive and add to its counts; expiry removes its rewriting")
    func countersAndExpiry() throws {
        let h = try handedOver()
        let before = try #require(h.summary)
        h.advance(milliseconds: 7_000 * 1000)
        h.engine.kernelPathCounters([KernelPathCounters(id: h.flowID, packetsToServer: 10, bytesToServer: 520,
                                                        packetsToDevice: 20, bytesToDevice: 1_000_000)], now: h.now)
        let after = try #require(h.summary)
        #expect(after.packetsToServer == before.packetsToServer + 10 && after.bytesToDevice == before.bytesToDevice + 1_000_000)
        #expect(after.idleSeconds == 0)
        // Unchanged counters are no activity: past the idle timeout the flow expires.
        h.advance(milliseconds: 7_441 * 1000)
        h.engine.kernelPathCounters([KernelPathCounters(id: h.flowID, packetsToServer: 10, bytesToServer: 520,
                                                        packetsToDevice: 20, bytesToDevice: 1_000_000)], now: h.now)
        h.engine.expire(now: h.now)
        #expect(h.engine.flowCount == 0 && h.engine.kernelPathFlowCount == 0)
        #expect(h.engine.takeKernelPathChanges().leave.map(\.id) == [h.flowID])
    }

    @Test("taken back (a FIN): once segments taught its state again, the flow is a normal one; active again, it is handed over again")
    func backAndAgain() throws {
        let h = try handedOver()
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        h.engine.expire(now: h.now)
        #expect(h.engine.takeKernelPathChanges().enter.isEmpty, "its state is not known yet")
        #expect(h.internalFlow?.kernelPath == .resyncing)
        h.send(h.fromServer(at: 60 * 1448, ack: 120, length: 1448))
        h.send(h.fromLaptop(at: 120, ack: 61 * 1448))
        h.engine.expire(now: h.now)
        #expect(h.engine.takeKernelPathChanges().enter.map(\.id) == [h.flowID], "known again and active: handed over again")
        #expect(h.internalFlow?.kernelPath == KernelPathState.none)
    }

    @Test("a migration of a flow in the kernel is refused until it is taken back")
    func refusedWhileInKernel() throws {
        let h = try handedOver()
        let (r, out) = try h.startMigration()
        guard case .failure(.unsupported(_, let why)) = r else { Issue.record("not refused: \(r)"); return }
        #expect(why.contains("kernel") && out.isEmpty)
        #expect(h.summary?.migration == nil)
    }

    @Test("back from the kernel: the migration waits until the device acknowledged what it got before the copy began, then pauses exactly")
    func migrationWaitsForState() throws {
        let h = try handedOver()
        // The kernel forwarded server bytes up to 40 segments, the laptop acknowledged 30.
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        let (r, out) = try h.startMigration()
        let mid = try #require(try? r.get())
        #expect(out.isEmpty, "nothing is frozen before the state is known")
        #expect(h.report(mid)?.phase == .requested && h.summary?.migrationPhase == .requested)
        #expect(try h.timers().isEmpty)
        // The next segments: server data from 40 (the copy starts there), the laptop's ack of 35.
        #expect(h.send(h.fromServer(at: 40 * 1448, ack: 120, length: 1448)).verdict == .forward)
        #expect(h.send(h.fromLaptop(at: 120, ack: 35 * 1448)).verdict == .forward)
        // State known, but [35, 40) is unacknowledged and not in the copy: not yet.
        #expect(try h.timers().isEmpty)
        #expect(h.report(mid)?.phase == .requested)
        #expect(h.send(h.fromServer(at: 41 * 1448, ack: 120, length: 1448)).verdict == .forward)
        // The laptop acknowledges 41: [41, 42) is unacknowledged and in the copy. Pause.
        #expect(h.send(h.fromLaptop(at: 120, ack: 41 * 1448)).verdict == .forward)
        let frozen = try h.timers()
        #expect(h.report(mid)?.phase == .paused)
        let toServer = try #require(frozen.first { $0.destination == MigrationLab.server })
        #expect(toServer.window == 0 && toServer.seq == SeqNumber(h.l(120)) && toServer.ack == SeqNumber(h.s(42 * 1448)))
        // The laptop takes the last segment: the cut is exactly what it has.
        #expect(h.send(h.fromLaptop(at: 120, ack: 42 * 1448)).verdict == .consumed)
        _ = try h.timers()
        let report = try #require(h.report(mid))
        #expect(report.phase == .oldDeviceCut && report.cutOffsetToDevice == UInt64(42 * 1448))
        #expect(report.cutOffsetToServer == 120)
        #expect(report.phases.first?.phase == .requested)
    }

    @Test("waiting for the flow's state is a phase of the migration, not a second table: one entry from request to pause")
    func awaitingStateIsAPhase() throws {
        let h = try handedOver()
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        let mid = try #require(try? h.startMigration(to: MigrationTarget(address: MigrationLab.phoneAddress, awaitsPort: true)).0.get())
        #expect(h.engine.migrations.count == 1 && h.engine.activeMigrationCount == 1)
        #expect(h.engine.migrations[mid]?.isAwaitingState == true)
        // The same entry answers a second request for the flow and takes the port binding.
        let (again, out) = try h.startMigration()
        if case .failure(let why) = again { #expect(why == .alreadyMigrating(h.flowID, mid)) } else { Issue.record("not refused: \(again)") }
        #expect(out.isEmpty)
        try h.engine.bindMigrationSourcePort(50001, to: mid).get()
        #expect(h.engine.awaitedNewDevice(mid)?.target.port == 50001)
        // State known and the device caught up: the same entry pauses (and, both directions
        // settled, is cut in the same tick), with the binding kept.
        #expect(h.send(h.fromServer(at: 40 * 1448, ack: 120, length: 1448)).verdict == .forward)
        #expect(h.send(h.fromLaptop(at: 120, ack: 41 * 1448)).verdict == .forward)
        _ = try h.timers()
        #expect(h.engine.migrations.count == 1)
        let frozen = try #require(h.engine.migrations[mid])
        #expect(!frozen.isAwaitingState && frozen.freeze != nil && frozen.target.port == 50001)
        #expect(h.report(mid)?.phases.map(\.phase).prefix(2) == [.requested, .paused])
    }

    @Test("the new device's SYN before the pause is held, claimed when the migration pauses, and answered after the cut")
    func synBeforePause() throws {
        let h = try handedOver()
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        let mid = try #require(try? h.startMigration().0.get())
        #expect(h.engine.awaitedNewDevice(mid)?.target.address == .v4(MigrationLab.phoneAddress), "other shards route the SYN here")
        let syn = h.send(h.phoneSyn())
        #expect(syn.verdict == .consumed && syn.generated.isEmpty)
        #expect(h.engine.flowCount == 1, "not a flow of its own")
        #expect(h.send(h.phoneSyn()).verdict == .consumed) // its retransmission too
        // State: nothing in flight.
        #expect(h.send(h.fromLaptop(at: 120, ack: 50 * 1448)).verdict == .forward)
        #expect(h.send(h.fromServer(at: 50 * 1448, ack: 120)).verdict == .forward)
        let out = try h.timers() // pause (and the held SYN claimed)
        #expect(h.report(mid)?.newDevice == MigrationLab.phone)
        let synAck = try (out + h.timers()).first { $0.flags == [.syn, .ack] && $0.destination == MigrationLab.phone }
        #expect(synAck?.seq == SeqNumber(h.s(50 * 1448) &- 1), "the SYN-ACK, once cut, at the cut - 1")
    }

    @Test("no state before the deadline: rolled back with the reason, the flow untouched and migratable again")
    func deadlineWhileWaiting() throws {
        let h = try handedOver()
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        let mid = try #require(try? h.startMigration(deadline: .seconds(2)).0.get())
        h.advance(milliseconds: 2100)
        _ = try h.timers()
        let report = try #require(h.report(mid))
        #expect(report.phase == .rolledBack && report.reason?.contains("kernel path") == true)
        #expect(h.summary?.migration == nil && h.engine.activeMigrationCount == 0)
        #expect(h.summary?.state == .established)
    }
}
