#if canImport(Glibc)
import Glibc
#endif
import Engine
import Forwarding
import Foundation
import Testing
import Wire
@testable import GatewayHost

/// A proxy that ended without tearing down, and the next one with the same plan taking its
/// configuration and its kernel-path flows over (issue "Survive a proxy restart"), against a
/// real kernel in a namespace the test creates and deletes.
@Suite(.serialized, .enabled(if: Lab.isAvailable, "needs root, the ip tool and /dev/net/tun"))
struct GatewayResumeNamespaceTests {
    /// What the test body saw inside the namespace.
    struct Seen: Sendable {
        var start: GatewaySetup.Start?
        var routesAfterCrash = ""
        var routesResumed = ""
        var linkResumed = ""
        var rulesInstalled = ""
        var rulesResumed = ""
        var resumedPID: Int32 = 0
        var otherPlanRefusal = ""
        var reconciled: [FlowCheckpoint] = []
        var staleRemoved = 0
        var toServerAfter = ""
        var teardownFailures: [String] = []
    }

    static func withoutIndexes(_ snapshot: Snapshot) -> String {
        "\(snapshot)".split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in
                let digits = line.prefix { $0.isNumber }
                return !digits.isEmpty && line.dropFirst(digits.count).hasPrefix(": ") ? "N" + line.dropFirst(digits.count) : line
            }.joined(separator: "\n")
    }

    @Test("the same plan takes the configuration over and makes again what the TUN took with it; the kernel path's table says which flows it forwards; another plan is refused with the difference named")
    func resumeTakesOverAndReconciles() throws {
        let stateDirectory = try TemporaryDirectory()
        defer { stateDirectory.cleanup() }
        try TestNamespace.with { namespace in
            let before = try namespace.snapshot()
            var plan = samplePlan()
            let table = KernelPathTable(tunName: plan.tunName, uplink: plan.uplinkInterface, nat: plan.nat)
            plan.kernelPath = table
            let path = stateDirectory.path
            func flow(_ id: UInt64, port: UInt16, nat: UInt16) -> KernelPathFlow {
                KernelPathFlow(id: FlowID(id), device: IPEndpoint(IPv4Address(10, 1, 0, 2), port),
                               server: IPEndpoint(IPv4Address(10, 2, 0, 2), 80), nat: IPEndpoint(plan.nat, nat))
            }
            // A: in the kernel, and so recorded. B: in the kernel, in no checkpoint (the crash
            // came before its record). C: recorded in the kernel, its rewriting gone (a take-back
            // not recorded). D: the engine's.
            let (a, b, c, d) = (flow(1, port: 40001, nat: 61001), flow(2, port: 40002, nat: 61002),
                                flow(3, port: 40003, nat: 61003), flow(4, port: 40004, nat: 61004))
            @Sendable func checkpoint(_ f: KernelPathFlow, inKernel: Bool) -> FlowCheckpoint {
                var c = FlowCheckpoint(id: f.id, device: f.device, original: f.server,
                                       server: f.server, natPort: f.nat.port, state: .established)
                c.inKernel = inKernel
                return c
            }
            let seen = try namespace.run { [plan] () throws -> Seen in
                var seen = Seen()
                let first = GatewaySetup(plan: plan, stateDirectory: path)
                try first.install()
                seen.rulesInstalled = try Lab.ip(["rule", "show"])
                let kernelPath = try KernelPath(table: table)
                try kernelPath.enter([a, b])
                // The crash: no teardown; the process is gone and its TUN with it.
                let store = GatewayStateStore(directory: path)
                var state = try #require(try store.load(tun: plan.tunName))
                state.pid = 0
                try store.save(state)
                try Lab.ip(["tuntap", "del", "dev", plan.tunName, "mode", "tun"])
                try Lab.ip(["tuntap", "add", "dev", plan.tunName, "mode", "tun"])
                seen.routesAfterCrash = try Lab.ip(["route", "show", "table", "7464"])

                var other = plan
                other.natPorts = PortRange(61000, 62000)
                do {
                    _ = try GatewaySetup(plan: other, stateDirectory: path).installOrResume()
                } catch {
                    seen.otherPlanRefusal = "\(error)"
                }

                let second = GatewaySetup(plan: plan, stateDirectory: path)
                seen.start = try second.installOrResume()
                seen.routesResumed = try Lab.ip(["route", "show", "table", "7464"])
                seen.linkResumed = try Lab.ip(["link", "show", plan.tunName])
                seen.rulesResumed = try Lab.ip(["rule", "show"])
                seen.resumedPID = try #require(try store.load(tun: plan.tunName)).pid
                // A and C on one shard, D on another: an entry is stale only if no shard adopts it.
                let previous = FlowCheckpoints(setup: 1, paths: ["0", "1"], previous: [
                    CheckpointCodec.Contents(flows: [checkpoint(a, inKernel: true), checkpoint(c, inKernel: true)]),
                    CheckpointCodec.Contents(flows: [checkpoint(d, inKernel: false)]),
                ])
                let (reconciled, removed) = try kernelPath.reconcile(previous)
                seen.staleRemoved = removed
                seen.reconciled = reconciled.previous.flatMap(\.flows)
                seen.toServerAfter = try Nftables().run("list set ip \(table.name) to_server")
                seen.teardownFailures = second.teardown()
                // The TUN made anew is down and plain, as the test namespace's was.
                try Lab.ip(["link", "set", plan.tunName, "up"])
                try Lab.ip(["link", "set", plan.tunName, "down"])
                return seen
            }
            #expect(seen.otherPlanRefusal.contains("under other options (differing in NAT ports)"), "\(seen.otherPlanRefusal)")
            #expect(seen.otherPlanRefusal.contains("start it again with the same options"))
            #expect(seen.routesAfterCrash.contains("blackhole default"))
            #expect(!seen.routesAfterCrash.contains("dev tsmp0"))
            #expect(seen.start == .resumed(previousPID: 0))
            #expect(seen.routesResumed.contains("default dev tsmp0"))
            #expect(seen.routesResumed.contains("blackhole default"))
            #expect(seen.linkResumed.contains("UP"))
            #expect(seen.rulesResumed == seen.rulesInstalled)
            #expect(seen.resumedPID == getpid())
            #expect(seen.reconciled.map(\.inKernel) == [true, false, false])
            #expect(seen.staleRemoved == 2)   // B's device-side and server-side entries
            #expect(seen.toServerAfter.contains("10.1.0.2 . 40001"))
            #expect(!seen.toServerAfter.contains("40002"))
            #expect(seen.teardownFailures == [])
            #expect(try GatewayStateStore(directory: path).statePaths() == [])
            // The same, but for the TUN's interface index (the test made it anew, as a restart does).
            let after = try namespace.snapshot()
            #expect(Self.withoutIndexes(after) == Self.withoutIndexes(before), "before:\n\(before)\nafter:\n\(after)")
        }
    }
}
