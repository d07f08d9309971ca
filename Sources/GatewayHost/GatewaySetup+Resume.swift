#if canImport(Glibc)
import Glibc
#endif
import PacketIO

/// Taking over what a previous proxy left (issue "Survive a proxy restart", items 2 and 3).
///
/// A proxy that ends without tearing down (kill -9, a crash, the OOM killer, or SIGTERM with
/// `--keep-state`) leaves its rules, routes, sysctls and nftables tables in place, and its
/// state file says so. While no proxy runs, the fail-closed route (`GatewayPlan.failClosedRoute`)
/// drops what the rules send to the table: the TUN, and its `default dev TUN` route, went with
/// the process. A new proxy with the *same plan* takes that configuration over instead of
/// refusing: it becomes the state file's process and makes again only what is missing (the
/// TUN's address, MTU and routes, its per-link sysctls); rules, the fail-closed route and the
/// nftables tables stay as they are, so the kernel path keeps forwarding its flows throughout.
/// Another plan is refused with the differences named (`install`'s message).
extension GatewaySetup {
    /// How `installOrResume` configured the gateway.
    public enum Start: Sendable, Equatable {
        /// From scratch (`install`).
        case installed
        /// Took over the configuration of the proxy `previousPID`, which had ended without
        /// removing it; its flow checkpoint is to be adopted.
        case resumed(previousPID: Int32)
    }

    /// Takes over the configuration a previous proxy left with this very plan, or installs it.
    /// - Throws: as `install`; a resume that fails part way leaves the configuration (and the
    ///   state file) in place, still failing closed, for a later start or `tsmp proxy cleanup`.
    public func installOrResume() throws(GatewaySetupError) -> Start {
        let existing: GatewayState?
        do {
            existing = try store.load(tun: plan.tunName)
        } catch {
            throw .refused("\(error); remove it or run `tsmp proxy cleanup`")
        }
        guard let existing, !existing.process.isRunning, existing.plan == plan else {
            try install()   // refuses a running proxy, or a dead one's other plan, with the reason
            return .installed
        }
        try resume(existing)
        return .resumed(previousPID: existing.pid)
    }

    private func resume(_ existing: GatewayState) throws(GatewaySetupError) {
        guard !installStarted else { throw .refused("this GatewaySetup has already installed its plan") }
        do {
            try plan.validate()
        } catch {
            throw .invalidPlan(error)
        }
        let session = try openSession()
        installStarted = true
        state = GatewayState(tunName: plan.tunName, process: .current, plan: plan, changes: existing.changes)
        do {
            try store.save(state)
        } catch {
            throw .failed(error, rollbackFailures: [])
        }
        var made = 0
        for change in existing.changes {
            do {
                if try change.reapply(session: session, sysctl: sysctl) {
                    made += 1
                    logger.info("made again", metadata: ["gateway.change": "\(change)"])
                }
            } catch {
                logger.error("cannot take the previous configuration over", metadata: ["gateway.change": "\(change)", "error": "\(error)"])
                throw .refused("taking over the configuration of the proxy that ended (pid \(existing.pid)) failed at \(change): \(error); the gateway still drops managed traffic; run `tsmp proxy cleanup` and start again")
            }
        }
        logger.notice("gateway configuration taken over", metadata: [
            "gateway.previous_pid": "\(existing.pid)", "gateway.changes": "\(existing.changes.count)",
            "gateway.made_again": "\(made)", "gateway.state": "\(stateFilePath)",
        ])
    }
}

extension GatewayChange {
    /// Makes the change if it is not in place; true when something was made. Idempotent:
    /// an address, route or rule already there, a rule already deleted, a table already
    /// present (its sets, the kernel path's flows, are kept: the table is not made anew).
    func reapply(session: NetlinkSession, sysctl: Sysctl) throws(SystemError) -> Bool {
        switch self {
        case .nftTable(let name, let ruleset):
            let nft = try Nftables()
            do {
                try nft.run("list table \(GatewayChange.nftFamily(of: ruleset)) \(name)")
                return false
            } catch where error.errno == ENOENT {
                try nft.run(ruleset)
                return true
            }
        case .removedRule(let rule):
            do { try session.deleteRule(rule) } catch where error.meansAlreadyGone { return false }
            return true
        case .sysctl(let key, _, let value):
            guard try sysctl.read(key) != value else { return false }
            try sysctl.write(key, value)
            return true
        default:
            do { try apply(session: session, sysctl: sysctl) } catch where error.errno == EEXIST { return false }
            return true
        }
    }
}

extension GatewayPlan {
    /// The options two plans differ in, for a refusal: "NAT ports, services".
    public static func differences(_ a: GatewayPlan?, _ b: GatewayPlan) -> String {
        guard let a else { return "the previous options are not recorded" }
        var names: [String] = []
        if a.tunName != b.tunName { names.append("TUN") }
        if a.table != b.table { names.append("route table") }
        if a.deviceInterfaces != b.deviceInterfaces { names.append("device interfaces") }
        if a.uplinkInterface != b.uplinkInterface { names.append("uplink") }
        if a.nat != b.nat { names.append("NAT address") }
        if a.nat6 != b.nat6 { names.append("IPv6 NAT address") }
        if a.natPorts != b.natPorts { names.append("NAT ports") }
        if a.interceptPorts != b.interceptPorts { names.append("intercepted ports") }
        if a.serviceAddresses != b.serviceAddresses { names.append("services") }
        if a.tunAddress != b.tunAddress { names.append("TUN address (offload)") }
        if a.tunMTU != b.tunMTU { names.append("TUN MTU (reassembly)") }
        if a.kernelPath != b.kernelPath { names.append("kernel path") }
        if a.mediaIntercept != b.mediaIntercept { names.append("media relay (--intercept rtsp, --media-ports)") }
        if a.reassembly != b.reassembly { names.append("reassembly") }
        return names.isEmpty ? "the same options" : "differing in " + names.joined(separator: ", ")
    }
}
