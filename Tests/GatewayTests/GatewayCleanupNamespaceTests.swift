#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Wire
import Gateway
@testable import GatewayHost

/// Cleanup after a crash (`tsmp proxy cleanup`), against a real kernel: from the state file,
/// after the TUN vanished with the process, without a state file, and never while the proxy
/// that wrote the state file still runs.
extension GatewaySetupNamespaceTests {
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
}
