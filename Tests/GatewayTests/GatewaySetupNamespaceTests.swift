#if canImport(Glibc)
import Glibc
#endif
import Forwarding
import Foundation
import Testing
import Engine
import Wire
import Gateway
@testable import GatewayHost

/// Setup, teardown and cleanup against a real kernel, inside network namespaces the tests
/// create and always delete. Each test compares what `ip` prints before and after.
@Suite(.serialized, .enabled(if: Lab.isAvailable, "needs root, the ip tool and /dev/net/tun"))
struct GatewaySetupNamespaceTests {
    /// Whether the gateway owns the NAT address (then the local rule has to move).
    enum NAT: String, CaseIterable, Sendable {
        case notOwned, owned

        var address: IPv4Address { self == .owned ? IPv4Address(10, 2, 0, 1) : IPv4Address(10, 2, 0, 100) }

        /// `ip rule show` while `samplePlan(nat: address)` is installed.
        var installedRules: String {
            let icmp = "9999:\tfrom all to \(address) iif veth-up ipproto icmp lookup 7464 proto 116"
            let reply = "10000:\tfrom all to \(address) iif veth-up ipproto tcp dport 61000-65534 lookup 7464 proto 116"
            let service = "10001:\tfrom all to 10.9.0.1 ipproto tcp dport 443 lookup 7464 proto 116"
            let transparent = ["10100:\tfrom all iif veth-dev0 ipproto tcp dport 80 lookup 7464 proto 116",
                               "10101:\tfrom all iif veth-dev0 ipproto tcp dport 8000-8100 lookup 7464 proto 116",
                               "10102:\tfrom all iif veth-dev0 ipproto icmp lookup 7464 proto 116"]
            switch self {
            case .notOwned: return ruleListing([icmp, reply, service] + transparent)
            case .owned: return ruleListing([icmp, reply, service, "10050:\tfrom all lookup local proto 116"] + transparent,
                                            localAtZero: false)
            }
        }
    }

    /// What a test body saw inside the namespace (assertions are made outside it, on the
    /// test's own task).
    struct Seen: Sendable {
        var installed: Snapshot?
        var recorded: GatewayState?
        var teardownFailures: [String] = []
        var installError: String?
        var reports: [GatewayCleanupReport] = []
        var output: [[String]] = []
        var afterCleanup: [Snapshot] = []
        var stateFiles: [String] = []
        var addrGenMode: (before: String?, installed: String?, after: String?)
    }

    // MARK: Install and teardown

    @Test(arguments: NAT.allCases)
    func installsThePlanAndTeardownRestoresEverything(nat: NAT) throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            let plan = samplePlan(nat: nat.address)
            let seen = try namespace.run { () throws -> Seen in
                let setup = GatewaySetup(plan: plan, stateDirectory: stateDirectory)
                var seen = Seen()
                seen.addrGenMode.before = try? Sysctl().read(plan.tunAddrGenModeKey)
                try setup.install()
                seen.installed = try namespace.snapshot()
                seen.addrGenMode.installed = try? Sysctl().read(plan.tunAddrGenModeKey)
                seen.recorded = try GatewayStateStore(directory: stateDirectory).load(tun: plan.tunName)
                seen.teardownFailures = setup.teardown()
                seen.addrGenMode.after = try? Sysctl().read(plan.tunAddrGenModeKey)
                seen.stateFiles = try GatewayStateStore(directory: stateDirectory).statePaths()
                return seen
            }
            let installed = try #require(seen.installed)
            #expect(installed.rules == nat.installedRules)
            #expect(installed.routes.contains("default dev tsmp0 table 7464 proto 116 scope link"))
            #expect(installed.ipForward == "1\n")
            #expect(installed.links.contains("tsmp0: <NO-CARRIER,POINTOPOINT,MULTICAST,NOARP,UP>"))

            // The state file holds every change, and what it records is what was planned.
            let recorded = try #require(seen.recorded)
            var facts = GatewayFacts(ownedAddresses: nat == .owned ? [.v4(nat.address)] : [])
            facts.tunAddrGenMode = seen.addrGenMode.before
            #expect(recorded.changes == plan.changes(given: facts))
            // No IPv6 link-local address on the TUN while installed, and the mode restored.
            #expect(seen.addrGenMode.before == "0")
            #expect(seen.addrGenMode.installed == "1")
            #expect(seen.addrGenMode.after == "0")
            #expect(recorded.pid == getpid())

            #expect(seen.teardownFailures == [])
            #expect(seen.stateFiles == [])
            let after = try namespace.snapshot()
            #expect(after == before, "before:\n\(before)\nafter:\n\(after)")
        }
    }

    @Test func tunAddressMTUAndReversePathFilterAreUndoneToo() throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            var plan = samplePlan()
            plan.tunAddress = NetlinkPrefix("10.99.0.1/32")
            plan.tunMTU = 1400
            let seen = try namespace.run { [plan] () throws -> (Snapshot, String, [String]) in
                let setup = GatewaySetup(plan: plan, stateDirectory: stateDirectory)
                try setup.install()
                let installed = try namespace.snapshot()
                let rpFilter = try Sysctl().read("net.ipv4.conf.tsmp0.rp_filter")
                return (installed, rpFilter, setup.teardown())
            }
            #expect(seen.0.addresses.contains("inet 10.99.0.1/32 scope global tsmp0"))
            #expect(seen.0.links.contains("tsmp0: <NO-CARRIER,POINTOPOINT,MULTICAST,NOARP,UP> mtu 1400"))
            #expect(seen.1 == "2")
            #expect(seen.2 == [])
            #expect(try namespace.snapshot() == before)
            #expect(try namespace.exec(["cat", "/proc/sys/net/ipv4/conf/tsmp0/rp_filter"]) != "2\n")
        }
    }

    /// The kernel path: its nftables table is installed with the rules (which then let marked
    /// packets pass), its sets take flows and count them, and teardown deletes the table.
    @Test func kernelPathTableAndMarkedRulesAreInstalledAndRemoved() throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            var plan = samplePlan()
            let table = KernelPathTable(tunName: plan.tunName, uplink: plan.uplinkInterface, nat: plan.nat)
            plan.kernelPath = table
            let flow = KernelPathFlow(id: FlowID(7), device: IPEndpoint("10.1.0.2:40000")!,
                                      server: IPEndpoint("10.2.0.2:80")!, nat: IPEndpoint(plan.nat, 61_001))
            let seen = try namespace.run { [plan] () throws -> (String, String, [KernelPathCounters], String, [String], String) in
                let setup = GatewaySetup(plan: plan, stateDirectory: stateDirectory)
                try setup.install()
                let rules = try Lab.ip(["rule", "show"])
                let kernelPath = try KernelPath(table: table)
                try kernelPath.enter([flow])
                let listed = try Nftables().run("list table ip \(table.name)")
                let counters = try kernelPath.counters(of: [flow])
                try kernelPath.leave([flow])
                try kernelPath.leave([flow]) // already gone: not an error
                let emptied = try Nftables().run("list set ip \(table.name) to_server")
                let failures = setup.teardown()
                let tables = try Nftables().run("list tables")
                return (rules, listed, counters, emptied, failures, tables)
            }
            #expect(seen.0.contains("10100:\tfrom all fwmark 0/0x74000000 iif veth-dev0 ipproto tcp dport 80 lookup 7464 proto 116"))
            #expect(seen.1.contains("10.1.0.2 . 40000 . 10.2.0.2 . 80 : 61001"))
            #expect(seen.1.contains("10.2.0.2 . 80 . 61001 : 10.1.0.2"))
            #expect(seen.2 == [KernelPathCounters(id: FlowID(7), packetsToServer: 0, bytesToServer: 0, packetsToDevice: 0, bytesToDevice: 0)])
            #expect(!seen.3.contains("10.1.0.2"))
            #expect(seen.4 == [])
            #expect(!seen.5.contains(table.name))
            #expect(try namespace.snapshot() == before)
        }
    }

    // MARK: Helpers

    /// Runs `body` with a fresh namespace and state directory, and checks that the namespace
    /// the tests run in kept its rules and ip_forward.
    func inNamespace(_ body: (TestNamespace, String) throws -> Void) throws {
        let rootBefore = try rootConfiguration()
        let stateDirectory = try TemporaryDirectory()
        defer { stateDirectory.cleanup() }
        try TestNamespace.with { namespace in try body(namespace, stateDirectory.path) }
        #expect(try rootConfiguration() == rootBefore)
    }

    /// SIGKILL: the test runner may leave SIGTERM ignored, which children inherit.
    func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func rootConfiguration() throws -> String {
        try Lab.ip(["rule", "show"]) + Sysctl().read("net.ipv4.ip_forward")
    }
}
