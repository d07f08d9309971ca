#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Wire
import Gateway
@testable import GatewayHost

/// Setup that cannot or did not finish, against a real kernel: a refusal names its reason and
/// changes nothing, a failed install removes what it had installed, netlink errors name the
/// operation and the object; and what a session lists of its own objects.
extension GatewaySetupNamespaceTests {
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
            // The test gateway has IPv6 off; on here, on the two links this test uses.
            try namespace.exec(["sysctl", "-qw", "net.ipv6.conf.veth-up.disable_ipv6=0", "net.ipv6.conf.lo.disable_ipv6=0"])
            try namespace.ip("-6", "addr", "add", "fd00:2::1/64", "dev", "veth-up", "nodad")
            try namespace.ip("-6", "route", "add", "local", "fd00:77::/48", "dev", "lo", "table", "local")
            let v6Rule = NetlinkRule(priority: 10000, table: 7464, inputInterface: "veth-up",
                                     destination: .host(IPAddress("fd00:2::1")!), ipProtocol: NetlinkRule.tcp,
                                     destinationPorts: 61000...61999, protocolTag: NetlinkProtocolTag.tsmp)
            let seen = try namespace.run { () throws -> ([NetlinkRule], [NetlinkRoute], [Bool], [NetlinkRule]) in
                let session = try NetlinkSession()
                let route = NetlinkRoute(table: 7464, device: "veth-up", protocolTag: NetlinkProtocolTag.tsmp)
                // An IPv6 route without a metric gets 1024 (IP6_RT_PRIO_USER): a plan names it.
                let route6 = NetlinkRoute(table: 7464, destination: .any6, device: "veth-up", protocolTag: NetlinkProtocolTag.tsmp,
                                          metric: 1024)
                try session.addRoute(route)
                defer { try? session.deleteRoute(route) }
                try session.addRoute(route6)
                defer { try? session.deleteRoute(route6) }
                try session.addRule(v6Rule)
                defer { try? session.deleteRule(v6Rule) }
                let local: [IPAddress] = [.v4(IPv4Address(10, 2, 0, 1)), .v4(IPv4Address(10, 77, 3, 4)), .v4(IPv4Address(10, 2, 0, 100)),
                                          IPAddress("fd00:2::1")!, IPAddress("fd00:77:0:5::9")!, IPAddress("fd00:2::2")!]
                return (try session.rules(family: .ipv4), try session.routes(protocolTag: NetlinkProtocolTag.tsmp),
                        try local.map { try session.isLocalAddress($0) }, try session.rules(family: .ipv6))
            }
            #expect(seen.0 == [.kernelLocal,
                               NetlinkRule(priority: 32766, table: NetlinkTable.main, protocolTag: NetlinkProtocolTag.kernel),
                               NetlinkRule(priority: 32767, table: 253, protocolTag: NetlinkProtocolTag.kernel)])
            #expect(seen.1 == [NetlinkRoute(table: 7464, device: "veth-up", protocolTag: NetlinkProtocolTag.tsmp),
                               NetlinkRoute(table: 7464, destination: .any6, device: "veth-up", protocolTag: NetlinkProtocolTag.tsmp,
                                            metric: 1024)])
            #expect(seen.2 == [true, true, false, true, true, false])
            // IPv6 rules in their own list, the added one read back as it was written.
            #expect(seen.3 == [.kernelLocal6, v6Rule,
                               NetlinkRule(priority: 32766, table: NetlinkTable.main, protocolTag: NetlinkProtocolTag.kernel, family: .ipv6)])
        }
    }
}
