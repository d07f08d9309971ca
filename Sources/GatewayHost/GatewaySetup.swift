import Logging
import PacketIO
import Wire

/// Installs a `GatewayPlan` in the kernel of the calling thread's network namespace and
/// removes it again (DESIGN §2).
///
/// Invariants:
/// - Nothing is changed until every check passed (plan valid, interfaces present, no proxy
///   running or crashed on this TUN, rule priorities and table free).
/// - Each change is recorded in the state file (/run/tsmp/netns-INODE/TUN.json, written atomically)
///   *before* it is made, so after a crash at any point `GatewayCleanup` finds everything.
/// - A failed install removes what it had installed before reporting the failure.
/// - Dropping a `GatewaySetup` does not tear down (a crash must look the same); call
///   `teardown()`. One thread at a time (it owns a netlink socket).
public final class GatewaySetup {
    public let plan: GatewayPlan
    public let store: GatewayStateStore
    /// The changes currently in place, in the order they were made.
    public var changes: [GatewayChange] { state.changes }
    public var stateFilePath: String { store.path(forTun: plan.tunName) }

    var state: GatewayState
    private var session: NetlinkSession?
    let sysctl: Sysctl
    let logger: Logger
    var installStarted = false
    /// Tests only: makes a change fail with the errno it returns (to exercise the rollback).
    var faultInjection: ((GatewayChange) -> Int32?)?

    /// Prepares to install `plan`; changes nothing yet.
    /// - Parameters:
    ///   - stateDirectory: where the state file goes (tests use a temporary directory).
    ///   - sysctl: where /proc/sys is.
    public init(plan: GatewayPlan, stateDirectory: String = GatewayStateStore.defaultDirectory,
                sysctl: Sysctl = Sysctl(), logger: Logger = Logger(label: "tsmp.gateway")) {
        self.plan = plan
        self.store = GatewayStateStore(directory: stateDirectory)
        self.state = GatewayState(tunName: plan.tunName, process: .current, plan: plan)
        self.sysctl = sysctl
        var logger = logger
        logger[metadataKey: "gateway.tun"] = "\(plan.tunName)"
        self.logger = logger
    }

    /// The changes `install` would make on this gateway now, after the same checks. Changes
    /// nothing (for `--dry-run`).
    public func preview() throws(GatewaySetupError) -> [GatewayChange] {
        let session = try openSession()
        return plan.changes(given: try Self.survey(plan, session: session, store: store, sysctl: sysctl))
    }

    /// Checks the plan against this gateway, then installs it. Call once.
    /// - Throws: `.invalidPlan` or `.refused` with nothing changed; `.failed` after removing
    ///   whatever had been installed (what could not be removed is in `rollbackFailures` and
    ///   in the state file; `teardown()` tries again).
    public func install() throws(GatewaySetupError) {
        guard !installStarted else { throw .refused("this GatewaySetup has already installed its plan") }
        let session = try openSession()
        let planned = plan.changes(given: try Self.survey(plan, session: session, store: store, sysctl: sysctl))
        installStarted = true
        do {
            try store.save(state)
        } catch {
            throw .failed(error, rollbackFailures: [])
        }
        for change in planned {
            do {
                state.changes.append(change)
                try store.save(state)   // the record comes first
                if let errno = faultInjection?(change) { throw SystemError("\(change) (injected)", errno: errno) }
                try change.apply(session: session, sysctl: sysctl)
                logger.info("installed", metadata: ["gateway.change": "\(change)"])
            } catch {
                // Not made (or not recorded): not ours to undo.
                state.changes.removeLast()
                logger.error("setup failed, removing what was installed",
                             metadata: ["gateway.change": "\(change)", "error": "\(error)"])
                throw .failed(error, rollbackFailures: undoAll())
            }
        }
        logger.notice("gateway configured", metadata: ["gateway.changes": "\(planned.count)",
                                                      "gateway.state": "\(stateFilePath)"])
    }

    /// Removes everything `install` installed, newest first, and deletes the state file.
    /// Keeps going past failures and returns them all (empty: the gateway is as it was);
    /// what could not be removed stays in the state file for `tsmp proxy cleanup`. Calling it
    /// again (or without a successful install) is harmless.
    @discardableResult
    public func teardown() -> [String] {
        guard installStarted else { return [] }
        let failures = undoAll().map { "\($0)" }
        if failures.isEmpty { logger.notice("gateway configuration removed") }
        return failures
    }

    /// Undoes `state.changes` newest first; returns the failures. The state file follows each
    /// step and is deleted when nothing is left.
    private func undoAll() -> [any Error] {
        guard let session else { return [] }
        var failures: [any Error] = []
        for index in state.changes.indices.reversed() {
            let change = state.changes[index]
            do {
                let outcome = try change.undo(session: session, sysctl: sysctl)
                switch outcome {
                case .undone: logger.info("removed", metadata: ["gateway.change": "\(change.undoDescription)"])
                case .alreadyGone: logger.info("already gone", metadata: ["gateway.change": "\(change.undoDescription)"])
                case .leftAlone(let reason): logger.warning("left alone", metadata: ["gateway.change": "\(change.undoDescription)",
                                                                                     "reason": "\(reason)"])
                }
                state.changes.remove(at: index)
                try? store.save(state)   // best effort: a stale entry only costs an "already gone"
            } catch {
                logger.error("cannot remove", metadata: ["gateway.change": "\(change.undoDescription)", "error": "\(error)"])
                failures.append(error)
            }
        }
        do {
            if state.changes.isEmpty { try store.remove(tun: plan.tunName) } else { try store.save(state) }
        } catch {
            failures.append(error)
        }
        return failures
    }

    // MARK: Checks before any change

    /// The session, opened on first use in the calling thread's network namespace.
    func openSession() throws(GatewaySetupError) -> NetlinkSession {
        if let session { return session }
        do {
            let opened = try NetlinkSession()
            session = opened
            return opened
        } catch {
            throw .refused("cannot talk to the kernel: \(error)")
        }
    }

    /// Reads what the plan's changes depend on and refuses anything that would collide.
    static func survey(_ plan: GatewayPlan, session: NetlinkSession, store: GatewayStateStore,
                       sysctl: Sysctl) throws(GatewaySetupError) -> GatewayFacts {
        do {
            try plan.validate()
        } catch {
            throw .invalidPlan(error)
        }
        do {
            return try surveyKernel(plan, session: session, store: store, sysctl: sysctl)
        } catch let error as GatewaySetupError {
            throw error
        } catch {
            throw .refused("cannot read the gateway's configuration: \(error)")
        }
    }

    private static func surveyKernel(_ plan: GatewayPlan, session: NetlinkSession, store: GatewayStateStore,
                                     sysctl: Sysctl) throws -> GatewayFacts {
        let tun = plan.tunName
        let statePath = store.path(forTun: tun)
        let existing: GatewayState?
        do {
            existing = try store.load(tun: tun)
        } catch {
            throw GatewaySetupError.refused("\(error); remove it or run `tsmp proxy cleanup`")
        }
        if let existing {
            if existing.process.isRunning {
                throw GatewaySetupError.refused("a tsmp proxy is already running on \(tun) (pid \(existing.pid), state file \(statePath))")
            }
            let why = existing.plan == plan ? "" : " under other options (\(GatewayPlan.differences(existing.plan, plan)))"
            throw GatewaySetupError.refused("a tsmp proxy on \(tun) (pid \(existing.pid)) ended without removing its configuration\(why) (state file \(statePath)); start it again with the same options to take its flows over, or run `tsmp proxy cleanup` first")
        }

        let names = [tun] + plan.deviceInterfaces + [plan.uplinkInterface]
        var missing: [String] = []
        for name in names where !missing.contains(name) {
            if try session.linkIfPresent(named: name) == nil { missing.append(name) }
        }
        if missing.contains(tun) { throw GatewaySetupError.refused("the TUN \(tun) does not exist (it must be created first)") }
        if !missing.isEmpty {
            throw GatewaySetupError.refused("no such interface: \(missing.joined(separator: ", "))")
        }
        let tunLink = try session.link(named: tun)

        let rules = try session.rules()
        if let leftover = rules.first(where: { $0.protocolTag == NetlinkProtocolTag.tsmp }) {
            throw GatewaySetupError.refused("tsmp rules from an earlier run are still installed (\(leftover)); run `tsmp proxy cleanup` first")
        }
        if let leftover = try session.routes(protocolTag: NetlinkProtocolTag.tsmp).first {
            throw GatewaySetupError.refused("tsmp routes from an earlier run are still installed (\(leftover)); run `tsmp proxy cleanup` first")
        }
        if let existingRoute = try session.routes(table: plan.table).first {
            throw GatewaySetupError.refused("route table \(plan.table) is already in use (\(existingRoute)); choose another table")
        }

        var owned: Set<IPAddress> = []
        for address in plan.natAddresses + plan.serviceAddresses.map(\.address) {
            if try session.isLocalAddress(address) { owned.insert(address) }
        }
        if let tunAddress = plan.tunAddress, try session.isLocalAddress(tunAddress.address) {
            throw GatewaySetupError.refused("the TUN address \(tunAddress.address) is already in use on this gateway")
        }

        var facts = GatewayFacts(ownedAddresses: owned,
                                 localRule: rules.first { $0.family == .ipv4 && $0.priority == 0 && $0.isPlainLocalLookup },
                                 tunIsUp: tunLink.isUp, tunMTU: tunLink.mtu,
                                 ipForward: try sysctl.read("net.ipv4.ip_forward"))
        facts.tunAddrGenMode = try sysctl.readIfPresent(plan.tunAddrGenModeKey)
        facts.localRule6 = rules.first { $0.family == .ipv6 && $0.priority == 0 && $0.isPlainLocalLookup }
        if plan.nat6 != nil {
            guard let forward = try sysctl.readIfPresent(GatewayPlan.ipv6ForwardKey) else {
                throw GatewaySetupError.refused("an IPv6 NAT address is given, but this kernel has no IPv6 (\(GatewayPlan.ipv6ForwardKey) is missing)")
            }
            facts.ipv6Forward = forward
        }
        if plan.kernelPath != nil { facts.uplinkSrcValidMark = try sysctl.read(plan.uplinkSrcValidMarkKey) }
        if plan.tunAddress != nil {
            facts.tunRPFilter = try sysctl.read(plan.tunRPFilterKey)
            facts.tunAcceptLocal = try sysctl.read(plan.tunAcceptLocalKey)
        }

        for family in plan.families {
            let present = rules.filter { $0.family == family }
            // The priorities we are about to use must be free (each family has its own rules).
            var ours = Set(plan.interceptRules(family).map(\.priority))
            if plan.needsLocalRuleMove(given: facts, family: family) { ours.insert(GatewayPlan.Priority.movedLocal) }
            if let taken = present.first(where: { ours.contains($0.priority) }) {
                throw GatewaySetupError.refused("rule priority \(taken.priority) is already in use (\(taken))")
            }
            // With an owned NAT address or VIP, no `lookup local` may come before our rules but
            // the pref 0 one we move.
            if plan.needsLocalRuleMove(given: facts, family: family) {
                let lastOurs = GatewayPlan.Priority.firstService + UInt32(plan.serviceAddresses.count)
                if let early = present.first(where: { $0.table == NetlinkTable.local && $0.priority != 0 && $0.priority < lastOurs }) {
                    let ownedList = owned.filter { $0.family == family }.sorted().map(\.description).joined(separator: ", ")
                    throw GatewaySetupError.refused("the gateway owns \(ownedList), so tsmp must move the `lookup local` rule below its own, but there is one at pref \(early.priority) (\(early)); use addresses the gateway does not own")
                }
            }
        }
        return facts
    }
}

/// Why `GatewaySetup.install` did not install.
public enum GatewaySetupError: Error, CustomStringConvertible {
    /// The plan itself is wrong. Nothing was changed.
    case invalidPlan(GatewayPlanError)
    /// The gateway is not in a state to install the plan. Nothing was changed.
    case refused(String)
    /// A change failed. Everything installed before it was removed again, except what
    /// `rollbackFailures` lists (left in the state file for `tsmp proxy cleanup`).
    case failed(any Error, rollbackFailures: [any Error])

    public var description: String {
        switch self {
        case .invalidPlan(let error): "\(error)"
        case .refused(let reason): "refusing to configure the gateway: \(reason)"
        case .failed(let error, let rollbackFailures) where rollbackFailures.isEmpty:
            "gateway setup failed: \(error); everything it had installed was removed"
        case .failed(let error, let rollbackFailures):
            "gateway setup failed: \(error); could not remove: "
                + rollbackFailures.map { "\($0)" }.joined(separator: "; ") + " (run `tsmp proxy cleanup`)"
        }
    }
}
