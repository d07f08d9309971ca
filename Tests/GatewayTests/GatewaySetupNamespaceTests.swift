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
    }

    // MARK: Install and teardown

    @Test(arguments: NAT.allCases)
    func installsThePlanAndTeardownRestoresEverything(nat: NAT) throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            let plan = samplePlan(nat: nat.address)
            let seen = try namespace.run { () throws -> Seen in
                let setup = GatewaySetup(plan: plan, stateDirectory: stateDirectory)
                try setup.install()
                var seen = Seen()
                seen.installed = try namespace.snapshot()
                seen.recorded = try GatewayStateStore(directory: stateDirectory).load(tun: plan.tunName)
                seen.teardownFailures = setup.teardown()
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
            let facts = GatewayFacts(ownedAddresses: nat == .owned ? [nat.address] : [])
            #expect(recorded.changes == plan.changes(given: facts))
            #expect(recorded.pid == getpid())

            #expect(seen.teardownFailures == [])
            #expect(seen.stateFiles == [])
            let after = try namespace.snapshot()
            #expect(after == before, "before:\n\(before)\nafter:\n\(after)")
        }
    }

    // MARK: Cleanup after a crash

    @Test(arguments: NAT.allCases)
    func cleanupAfterACrashRestoresEverythingAndIsSafeToRepeat(nat: NAT) throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            let plan = samplePlan(nat: nat.address)
            let seen = try namespace.run { () throws -> Seen in
                var seen = Seen()
                do {
                    let setup = GatewaySetup(plan: plan, stateDirectory: stateDirectory)
                    try setup.install()
                }   // the process "dies": the object is gone, the kernel objects and state file stay
                seen.installed = try namespace.snapshot()
                for _ in 0..<2 {
                    var lines: [String] = []
                    seen.reports.append(GatewayCleanup.run(stateDirectory: stateDirectory) { lines.append($0) })
                    seen.output.append(lines)
                    seen.afterCleanup.append(try namespace.snapshot())
                }
                seen.stateFiles = try GatewayStateStore(directory: stateDirectory).statePaths()
                return seen
            }
            #expect(try #require(seen.installed).rules == nat.installedRules)

            let first = seen.reports[0]
            #expect(first.isClean, "\(first.failures)")
            #expect(first.actions.contains("delete rule pref 10100 iif veth-dev0 ipproto tcp dport 80 lookup 7464 proto 0x74"))
            #expect(first.actions.contains("set net.ipv4.ip_forward = 0"))
            #expect(first.actions.contains("set link tsmp0 down"))
            if nat == .owned { #expect(first.actions.contains("add rule pref 0 lookup local proto kernel")) }
            #expect(seen.afterCleanup[0] == before, "before:\n\(before)\nafter:\n\(seen.afterCleanup[0])")

            let second = seen.reports[1]
            #expect(second == GatewayCleanupReport())
            #expect(seen.output[1] == ["nothing to clean up"])
            #expect(seen.afterCleanup[1] == before)
            #expect(seen.stateFiles == [])
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
            let flow = KernelPathFlow(id: FlowID(7), device: IPv4Endpoint("10.1.0.2:40000")!,
                                      server: IPv4Endpoint("10.2.0.2:80")!, nat: IPv4Endpoint(plan.nat, 61_001))
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

    /// After kill -9 the kernel deletes the proxy's TUN, and with it the route, the address and
    /// the TUN's sysctls: cleanup finds them already gone and removes the rest.
    @Test func cleanupAfterTheTunVanishedWithTheProcess() throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            var plan = samplePlan(nat: NAT.owned.address)
            plan.tunAddress = NetlinkPrefix("10.99.0.1/32")
            let seen = try namespace.run { [plan] () throws -> Seen in
                do {
                    try GatewaySetup(plan: plan, stateDirectory: stateDirectory).install()
                }
                try namespace.ip("link", "delete", "tsmp0")
                var seen = Seen()
                var lines: [String] = []
                seen.reports.append(GatewayCleanup.run(stateDirectory: stateDirectory) { lines.append($0) })
                seen.output.append(lines)
                seen.afterCleanup.append(try namespace.snapshot())
                return seen
            }
            let report = seen.reports[0]
            #expect(report.isClean, "\(report.failures)")
            #expect(seen.output[0].contains("  already gone: delete route default dev tsmp0 table 7464 proto 0x74"))
            #expect(seen.output[0].contains("  already gone: set net.ipv4.conf.tsmp0.rp_filter = 0"))
            #expect(seen.output[0].contains("  already gone: set link tsmp0 down"))
            let after = seen.afterCleanup[0]
            #expect(after.rulesDetailed == before.rulesDetailed)
            #expect(after.routes == before.routes)
            #expect(after.ipForward == before.ipForward)
        }
    }

    @Test func cleanupWithoutAStateFileStillRemovesTaggedRulesAndRestoresTheLocalRule() throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            let seen = try namespace.run { () throws -> Seen in
                do {
                    try GatewaySetup(plan: samplePlan(nat: NAT.owned.address), stateDirectory: stateDirectory).install()
                }
                try GatewayStateStore(directory: stateDirectory).remove(tun: "tsmp0")   // the record is lost too
                var seen = Seen()
                seen.reports.append(GatewayCleanup.run(stateDirectory: stateDirectory))
                seen.afterCleanup.append(try namespace.snapshot())
                return seen
            }
            let report = seen.reports[0]
            #expect(report.isClean)
            #expect(report.actions.first == "add rule pref 0 lookup local proto kernel (restored)")
            #expect(report.actions.contains("delete rule pref 10050 lookup local proto 0x74 (tagged, in no state file)"))
            #expect(report.actions.contains("delete route default dev tsmp0 table 7464 proto 0x74 (tagged, in no state file)"))
            let after = seen.afterCleanup[0]
            #expect(after.rulesDetailed == before.rulesDetailed)
            #expect(after.routes == before.routes)
            // Without a record nothing can say what ip_forward was: it stays as tsmp left it.
            #expect(after.ipForward == "1\n")
        }
    }

    @Test func cleanupLeavesARunningProxyAlone() throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            // Another process stands in for a running proxy.
            let sleeper = Process()
            sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
            sleeper.arguments = ["60"]
            try sleeper.run()
            defer { stop(sleeper) }
            let proxy = GatewayProcess(pid: sleeper.processIdentifier,
                                       startTime: GatewayProcess.status(of: sleeper.processIdentifier)?.startTime)

            let installed = try namespace.run { () throws -> Snapshot in
                try GatewaySetup(plan: samplePlan(), stateDirectory: stateDirectory).install()
                let store = GatewayStateStore(directory: stateDirectory)
                guard var state = try store.load(tun: "tsmp0") else { throw Lab.CommandFailed(description: "no state file") }
                (state.pid, state.processStartTime) = (proxy.pid, proxy.startTime)
                try store.save(state)
                return try namespace.snapshot()
            }
            let whileRunning = try namespace.run { GatewayCleanup.run(stateDirectory: stateDirectory) }
            #expect(whileRunning.runningProxies == [GatewayStateStore(directory: stateDirectory).path(forTun: "tsmp0")])
            #expect(whileRunning.failures.first?.contains("still running (pid \(proxy.pid))") == true)
            #expect(whileRunning.actions == [])
            #expect(try namespace.snapshot() == installed)

            stop(sleeper)
            let afterExit = try namespace.run { GatewayCleanup.run(stateDirectory: stateDirectory) }
            #expect(afterExit.isClean)
            #expect(try namespace.snapshot() == before)
        }
    }

    // MARK: Refusing without changing anything

    /// Something in the way of the plan, and what the refusal must say.
    enum Obstacle: String, CaseIterable, Sendable {
        case missingInterface, missingTun, takenPriority, tableInUse, leftoverTaggedRule, staleStateFile, localRuleInTheWay

        func prepare(_ namespace: TestNamespace, _ plan: inout GatewayPlan, stateDirectory: String) throws {
            switch self {
            case .missingInterface: plan.deviceInterfaces = ["veth-dev0", "veth-nope"]
            case .missingTun: plan.tunName = "tsmp9"
            case .takenPriority: try namespace.ip("rule", "add", "pref", "10101", "lookup", "main")
            case .tableInUse: try namespace.ip("route", "add", "10.8.0.0/16", "dev", "veth-up", "table", "7464")
            case .leftoverTaggedRule: try namespace.ip("rule", "add", "pref", "20000", "lookup", "main", "proto", "116")
            case .staleStateFile:
                // Written by "a process" with our pid but another start time: a recycled pid.
                let me = GatewayProcess.current
                let dead = GatewayProcess(pid: me.pid, startTime: (me.startTime ?? 0) + 1)
                try GatewayStateStore(directory: stateDirectory)
                    .save(GatewayState(tunName: "tsmp0", process: dead, plan: nil, changes: [.linkUp(link: "tsmp0")]))
            case .localRuleInTheWay:
                plan.nat = NAT.owned.address
                try namespace.ip("rule", "add", "pref", "5", "lookup", "local")
            }
        }

        var reason: String {
            switch self {
            case .missingInterface: "no such interface: veth-nope"
            case .missingTun: "the TUN tsmp9 does not exist"
            case .takenPriority: "rule priority 10101 is already in use (pref 10101 lookup main)"
            case .tableInUse: "route table 7464 is already in use (10.8.0.0/16 dev veth-up table 7464 proto boot); choose another table"
            case .leftoverTaggedRule: "tsmp rules from an earlier run are still installed (pref 20000 lookup main proto 0x74); run `tsmp proxy cleanup` first"
            case .staleStateFile: "ended without removing its configuration"
            case .localRuleInTheWay: "there is one at pref 5"
            }
        }
    }

    @Test(arguments: Obstacle.allCases)
    func refusesWithAReasonAndChangesNothing(obstacle: Obstacle) throws {
        try inNamespace { namespace, stateDirectory in
            var plan = samplePlan()
            try obstacle.prepare(namespace, &plan, stateDirectory: stateDirectory)
            let before = try namespace.snapshot()
            let filesBefore = try GatewayStateStore(directory: stateDirectory).statePaths()
            let plannedPlan = plan
            let error = try namespace.run { () -> String? in
                do {
                    try GatewaySetup(plan: plannedPlan, stateDirectory: stateDirectory).install()
                    return nil
                } catch let error as GatewaySetupError {
                    guard case .refused = error else { return "not a refusal: \(error)" }
                    return "\(error)"
                } catch {
                    return "not a GatewaySetupError: \(error)"
                }
            }
            let message = try #require(error)
            #expect(message.hasPrefix("refusing to configure the gateway: "), "\(message)")
            #expect(message.contains(obstacle.reason), "\(message)")
            #expect(try namespace.snapshot() == before)
            #expect(try GatewayStateStore(directory: stateDirectory).statePaths() == filesBefore)
        }
    }

    @Test func refusesASecondSetupOnTheSameTun() throws {
        try inNamespace { namespace, stateDirectory in
            let seen = try namespace.run { () throws -> Seen in
                let first = GatewaySetup(plan: samplePlan(), stateDirectory: stateDirectory)
                try first.install()
                var seen = Seen()
                seen.installed = try namespace.snapshot()
                do {
                    try GatewaySetup(plan: samplePlan(), stateDirectory: stateDirectory).install()
                } catch {
                    seen.installError = "\(error)"
                }
                seen.afterCleanup.append(try namespace.snapshot())
                seen.teardownFailures = first.teardown()
                return seen
            }
            #expect(seen.installError?.contains("a tsmp proxy is already running on tsmp0 (pid \(getpid())") == true,
                    "\(seen.installError ?? "installed twice")")
            #expect(seen.afterCleanup[0] == seen.installed)
            #expect(seen.teardownFailures == [])
        }
    }

    // MARK: A failure half-way

    @Test func aFailedInstallRemovesWhatItHadInstalled() throws {
        try inNamespace { namespace, stateDirectory in
            let before = try namespace.snapshot()
            let seen = try namespace.run { () -> Seen in
                let setup = GatewaySetup(plan: samplePlan(nat: NAT.owned.address), stateDirectory: stateDirectory)
                setup.faultInjection = { change in
                    if case .rule(let rule) = change, rule.priority == 10101 { return EPERM }
                    return nil
                }
                var seen = Seen()
                do { try setup.install() } catch { seen.installError = "\(error)" }
                seen.stateFiles = (try? GatewayStateStore(directory: stateDirectory).statePaths()) ?? ["?"]
                seen.teardownFailures = setup.teardown()   // harmless after the rollback
                return seen
            }
            #expect(seen.installError == "gateway setup failed: add rule pref 10101 iif veth-dev0 ipproto tcp dport 8000-8100 lookup 7464 proto 0x74 (injected): Operation not permitted (errno 1); everything it had installed was removed")
            #expect(seen.stateFiles == [])
            #expect(seen.teardownFailures == [])
            #expect(try namespace.snapshot() == before)
        }
    }

    @Test func netlinkErrorsNameTheOperationAndTheObject() throws {
        try inNamespace { namespace, _ in
            let messages = try namespace.run { () throws -> [String] in
                let session = try NetlinkSession()
                let rule = NetlinkRule(priority: 10100, table: 7464, inputInterface: "veth-dev0", ipProtocol: 6,
                                       destinationPorts: 80...80, protocolTag: NetlinkProtocolTag.tsmp)
                try session.addRule(rule)
                var messages: [String] = []
                do { try session.addRule(rule) } catch { messages.append("\(error)") }
                try session.deleteRule(rule)
                do { try session.deleteRule(rule) } catch { messages.append("\(error)") }
                do { _ = try session.link(named: "nope0") } catch { messages.append("\(error)") }
                return messages
            }
            #expect(messages == [
                "add rule pref 10100 iif veth-dev0 ipproto tcp dport 80 lookup 7464 proto 0x74: File exists (errno 17)",
                "delete rule pref 10100 iif veth-dev0 ipproto tcp dport 80 lookup 7464 proto 0x74: No such file or directory (errno 2)",
                "look up link nope0: No such device (errno 19)",
            ])
        }
    }

    @Test func listsWhatItInstalledAndFindsLocalAddresses() throws {
        try inNamespace { namespace, _ in
            try namespace.ip("route", "add", "local", "10.77.0.0/16", "dev", "lo", "table", "local")
            let seen = try namespace.run { () throws -> ([NetlinkRule], [NetlinkRoute], [Bool]) in
                let session = try NetlinkSession()
                let route = NetlinkRoute(table: 7464, device: "veth-up", protocolTag: NetlinkProtocolTag.tsmp)
                try session.addRoute(route)
                defer { try? session.deleteRoute(route) }
                let local = [IPv4Address(10, 2, 0, 1), IPv4Address(10, 77, 3, 4), IPv4Address(10, 2, 0, 100)]
                return (try session.rules(), try session.routes(protocolTag: NetlinkProtocolTag.tsmp),
                        try local.map { try session.isLocalAddress($0) })
            }
            #expect(seen.0 == [.kernelLocal,
                               NetlinkRule(priority: 32766, table: NetlinkTable.main, protocolTag: NetlinkProtocolTag.kernel),
                               NetlinkRule(priority: 32767, table: 253, protocolTag: NetlinkProtocolTag.kernel)])
            #expect(seen.1 == [NetlinkRoute(table: 7464, device: "veth-up", protocolTag: NetlinkProtocolTag.tsmp)])
            #expect(seen.2 == [true, true, false])
        }
    }

    // MARK: Helpers

    /// Runs `body` with a fresh namespace and state directory, and checks that the namespace
    /// the tests run in kept its rules and ip_forward.
    private func inNamespace(_ body: (TestNamespace, String) throws -> Void) throws {
        let rootBefore = try rootConfiguration()
        let stateDirectory = try TemporaryDirectory()
        defer { stateDirectory.cleanup() }
        try TestNamespace.with { namespace in try body(namespace, stateDirectory.path) }
        #expect(try rootConfiguration() == rootBefore)
    }

    /// SIGKILL: the test runner may leave SIGTERM ignored, which children inherit.
    private func stop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    private func rootConfiguration() throws -> String {
        try Lab.ip(["rule", "show"]) + Sysctl().read("net.ipv4.ip_forward")
    }
}
