@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The engine's events (`EngineEvent`): what its driver learns without asking it — the new
/// device's SYN a migration waits for and when it stops waiting, the kernel path's changes
/// (and that a flow whose hand-over is unconfirmed is not migrated), released 4-tuples.
@Suite("Engine events: awaited SYNs, kernel-path changes, released 4-tuples")
struct EngineEventTests {
    typealias H = MigrationHarness

    @Test("a migration announces the SYN it waits for, again when its port is bound, and when it stops waiting")
    func awaitedSyn() throws {
        let h = H.established()
        #expect(!h.engine.hasEvents)
        let (r, _) = try h.startMigration(to: MigrationTarget(address: MigrationLab.phoneAddress, awaitsPort: true))
        let mid = try r.get()
        let started = h.engine.takeEvents()
        guard case .expectNewDeviceSyn(let id, let target, let original)? = started.first, started.count == 1 else {
            Issue.record("no single expectNewDeviceSyn: \(started)"); return
        }
        #expect(id == mid && target.awaitsPort && original == MigrationLab.server)
        #expect(h.engine.takeEvents().isEmpty, "told once")
        #expect(throws: Never.self) { try h.engine.bindMigrationSourcePort(MigrationLab.phone.port, to: mid).get() }
        let bound = h.engine.takeEvents()
        guard case .expectNewDeviceSyn(mid, let boundTarget, _)? = bound.first else { Issue.record("not announced again: \(bound)"); return }
        #expect(boundTarget.port == MigrationLab.phone.port && !boundTarget.awaitsPort)
        // Claimed by the phone's SYN: no longer awaited.
        #expect(h.send(h.phoneSyn()).verdict == .consumed)
        #expect(h.engine.takeEvents() == [.newDeviceSynNoLongerAwaited(mid)])
        #expect(!h.engine.hasEvents)
    }

    @Test("a migration rolled back at its deadline stops waiting for its SYN")
    func rollbackStopsWaiting() throws {
        let h = H.established()
        let (mid, _) = try h.migrate(deadline: .seconds(2))
        _ = h.engine.takeEvents()
        h.advance(milliseconds: 2100)
        _ = try h.timers()
        #expect(h.engine.takeEvents() == [.newDeviceSynNoLongerAwaited(mid)])
    }

    @Test("a flow chosen for the kernel path is an event; until confirmed no migration starts on it; refused when it closed meanwhile")
    func kernelPathEvents() throws {
        let h = H.established(downloaded: 8 * 1448, acked: 8 * 1448, kernelPath: KernelPathTests.policy)
        h.advance(milliseconds: 1100)
        h.send(h.fromServer(at: 8 * 1448, ack: 120))
        h.engine.expire(now: h.now)
        let events = h.engine.takeEvents()
        guard case .kernelPathEnter(let flows)? = events.first, events.count == 1 else { Issue.record("no enter: \(events)"); return }
        #expect(flows.map(\.id) == [h.flowID])
        #expect(h.engine.kernelPathFlow(h.flowID) == flows.first, "the kernel may forward it already")
        guard case .failure(.unsupported) = try h.startMigration().0 else { Issue.record("migrated while handed over"); return }
        // The hand-over failed: the flow is the engine's again.
        h.engine.kernelPathEnterFailed([h.flowID])
        #expect(h.engine.kernelPathFlow(h.flowID) == nil)
        // Chosen again, then a FIN before the confirmation: the confirmation is refused.
        h.advance(milliseconds: 100)
        h.send(h.fromServer(at: 8 * 1448, ack: 120))
        h.engine.expire(now: h.now)
        #expect(h.engine.takeEvents() == [.kernelPathEnter(flows)])
        h.send(h.fromServer([.ack, .fin], at: 8 * 1448, ack: 120))
        #expect(h.engine.kernelPathEntered([h.flowID], now: h.now) == flows, "remove its rewriting again")
        #expect(h.summary?.inKernel == nil && h.engine.kernelPathFlowCount == 0)
    }

    @Test("a 4-tuple the arbiter assigned is released once the engine no longer holds it")
    func released() throws {
        let h = H.established()
        let (mid, _) = try h.migrate(deadline: .seconds(2))
        _ = h.engine.takeEvents()
        let phone = MigrationLab.phone
        // Assigned, but the migration ends before the SYN comes: nothing holds the 4-tuple.
        h.engine.assignNewDeviceSyn(device: phone, original: MigrationLab.server, to: mid)
        h.engine.expire(now: h.now)
        #expect(h.engine.takeEvents().isEmpty, "still waiting to be claimed")
        h.advance(milliseconds: 2100)
        _ = try h.timers()
        h.engine.expire(now: h.now)
        let events = h.engine.takeEvents()
        #expect(events.contains(.released(device: phone, original: MigrationLab.server)))
        h.engine.expire(now: h.now)
        #expect(h.engine.takeEvents().isEmpty, "told once")
    }

    @Test("a SYN kept by a migration waiting for its flow's state (back from the kernel path) is not released")
    func pendingSynHeld() throws {
        let h = try KernelPathTests().handedOver()
        h.engine.kernelPathLeft([h.flowID], now: h.now)
        let mid = try #require(try? h.startMigration().0.get())
        _ = h.engine.takeEvents()
        h.engine.assignNewDeviceSyn(device: MigrationLab.phone, original: MigrationLab.server, to: mid)
        #expect(h.send(h.phoneSyn()).verdict == .consumed, "kept until the pause")
        h.engine.expire(now: h.now)
        #expect(!h.engine.takeEvents().contains(.released(device: MigrationLab.phone, original: MigrationLab.server)))
    }
}
