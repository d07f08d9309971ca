#if canImport(Glibc)
import Wire
import Glibc
#endif
import Logging
import PacketIO

/// `tsmp proxy cleanup`: restores the gateway after a proxy died without tearing down
/// (kill -9, power loss of the process, a bug), in the calling thread's network namespace.
///
/// 1. Every state file in the directory whose process is gone: its changes are undone newest
///    first ("already gone" is fine) and the file is deleted. A state file of a running proxy
///    is left alone, and then so is everything else (its rules carry the same tag).
/// 2. Any rule or route still carrying tsmp's protocol tag 0x74 is deleted, with or without a
///    state file.
/// 3. `pref 0 lookup local` is added back if it is missing and tsmp moved it (a state file or
///    a tagged `lookup local` rule says so), or if no `lookup local` rule is left at all.
///    The state file's flow checkpoint goes with it.
/// 4. Any nftables table named `tsmp_kernel_path_*` (the kernel path's) or `tsmp_reassembly_*`
///    (fragment reassembly's) is deleted.
///
/// Safe to run any number of times; with nothing left it says so and changes nothing.
/// Sysctls are restored only from state files (step 1): without a record nobody knows the
/// old value. A state file written by this very process does not count as a running proxy.
public enum GatewayCleanup {
    /// Cleans up and returns what it did; `output` gets one line per step as it goes,
    /// including what was already gone (the CLI prints `actions` and `failures` instead).
    /// Never throws: every failure is in the report, and the rest of the cleanup still runs.
    @discardableResult
    public static func run(stateDirectory: String = GatewayStateStore.defaultDirectory, sysctl: Sysctl = Sysctl(),
                           logger: Logger = Logger(label: "tsmp.gateway.cleanup"),
                           output: (String) -> Void = { _ in }) -> GatewayCleanupReport {
        let store = GatewayStateStore(directory: stateDirectory)
        var report = GatewayCleanupReport()
        func say(_ line: String) {
            output(line)
            logger.info("\(line)")
        }
        func fail(_ line: String) {
            report.failures.append(line)
            output(line)
            logger.error("\(line)")
        }
        /// Deletes a tagged leftover; "already gone" means someone was faster.
        func sweep(_ object: String, _ delete: () throws(SystemError) -> Void) {
            do {
                try delete()
                report.actions.append("delete \(object) (tagged, in no state file)")
                say("deleted \(object) (tagged, in no state file)")
            } catch where error.meansAlreadyGone {
            } catch {
                fail("failed: \(error)")
            }
        }
        let session: NetlinkSession
        do { session = try NetlinkSession() } catch {
            fail("\(error)")
            return report
        }

        // 1. State files.
        var localRuleWasMoved: Set<IPFamily> = []
        var paths: [String] = []
        do { paths = try store.statePaths() } catch { fail("\(error)") }
        for path in paths {
            let state: GatewayState
            do { state = try store.load(path: path) } catch { fail("\(error) (left in place)"); continue }
            let process = state.process
            if process.isRunning && !process.isCurrent {
                report.runningProxies.append(path)
                fail("the tsmp proxy on \(state.tunName) is still running (pid \(state.pid)); stop it first (left \(path) and its changes alone)")
                continue
            }
            say("\(path): tsmp proxy on \(state.tunName) (pid \(state.pid)) is gone, undoing \(state.changes.count) change(s)")
            for case .removedRule(let rule) in state.changes { localRuleWasMoved.insert(rule.family) }
            var remaining = state
            for index in state.changes.indices.reversed() {
                let change = state.changes[index]
                do {
                    switch try change.undo(session: session, sysctl: sysctl) {
                    case .undone:
                        report.actions.append(change.undoDescription)
                        say("  \(change.undoDescription)")
                    case .alreadyGone: say("  already gone: \(change.undoDescription)")
                    case .leftAlone(let reason): say("  left alone: \(change.undoDescription) (\(reason))")
                    }
                    remaining.changes.remove(at: index)
                } catch {
                    fail("failed: \(error)")
                }
            }
            do {
                if remaining.changes.isEmpty {
                    let checkpoints = try store.remove(tun: state.tunName)
                    report.actions.append("removed state file \(path)")
                    say("  removed \(path)")
                    for c in checkpoints {
                        report.actions.append("removed flow checkpoint \(c)")
                        say("  removed \(c) (the flows it held cannot be adopted any more)")
                    }
                    // The dead proxy's control socket (a file nobody answers on any more).
                    let socket = LocalControlSocket.defaultPath(tun: state.tunName, stateDirectory: store.directory)
                    if unlink(socket) == 0 {
                        report.actions.append("removed control socket \(socket)")
                        say("  removed \(socket)")
                    }
                } else {
                    try store.save(remaining)
                    say("  kept \(path) with the \(remaining.changes.count) change(s) that could not be undone")
                }
            } catch {
                fail("\(error)")
            }
        }

        if !report.runningProxies.isEmpty {
            say("not sweeping rules and routes tagged proto 0x74: a tsmp proxy is running")
            return report
        }

        // 2 and 3. Tagged leftovers, and the local rule, in each family.
        for family in IPFamily.allCases {
            let rules: [NetlinkRule]
            do throws(SystemError) { rules = try session.rules(family: family) } catch {
                // A kernel without IPv6 has no IPv6 rules to sweep.
                if family == .ipv6 && error.errno == EAFNOSUPPORT { continue }
                fail("failed: \(error)")
                continue
            }
            let tagged = rules.filter { $0.protocolTag == NetlinkProtocolTag.tsmp }
            if tagged.contains(where: \.isPlainLocalLookup) { localRuleWasMoved.insert(family) }
            let hasLocalAtZero = rules.contains { $0.priority == 0 && $0.isPlainLocalLookup }
            let hasOtherLocal = rules.contains {
                $0.table == NetlinkTable.local && $0.protocolTag != NetlinkProtocolTag.tsmp
            }
            if !hasLocalAtZero && (localRuleWasMoved.contains(family) || !hasOtherLocal) {
                let local = family == .ipv4 ? NetlinkRule.kernelLocal : NetlinkRule.kernelLocal6
                do {
                    try session.addRule(local)
                    report.actions.append("add rule \(local) (restored)")
                    say("restored rule \(local)")
                } catch {
                    fail("failed: \(error)")
                }
            }
            for rule in tagged { sweep("rule \(rule)") { () throws(SystemError) in try session.deleteRule(rule) } }
        }
        do {
            for route in try session.routes(protocolTag: NetlinkProtocolTag.tsmp) {
                sweep("route \(route)") { () throws(SystemError) in try session.deleteRoute(route) }
            }
        } catch {
            fail("failed: \(error)")
        }

        // The kernel path's and the reassembly's tables (named for tsmp, like the protocol tag on rules).
        do {
            let nft = try Nftables()
            let listing = try nft.run("list tables")
            for (family, name) in KernelPathTable.tables(inListing: listing) + ReassemblyTable.tableNames(inListing: listing).map({ ("ip", $0) }) + MediaInterceptTable.tables(inListing: listing) {
                sweep("nftables table \(family) \(name)") { () throws(SystemError) in try nft.run("delete table \(family) \(name)") }
            }
        } catch {
            fail("failed: \(error)")
        }

        if report.actions.isEmpty && report.failures.isEmpty { say("nothing to clean up") }
        return report
    }
}

/// What `GatewayCleanup.run` did.
public struct GatewayCleanupReport: Sendable, Equatable {
    /// Each change made, in `ip` words ("delete rule pref 10000 ...").
    public var actions: [String] = []
    /// Each thing that could not be done.
    public var failures: [String] = []
    /// State files left alone because their proxy still runs.
    public var runningProxies: [String] = []

    /// Whether the gateway is now free of tsmp's configuration.
    public var isClean: Bool { failures.isEmpty && runningProxies.isEmpty }
}
