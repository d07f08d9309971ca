import Wire

/// Service-address mode (DESIGN §3): devices connect to `vip`, the proxy splices to `target`.
public struct ServiceMapping: Hashable, Sendable, Codable, CustomStringConvertible {
    public var vip: IPEndpoint
    public var target: IPEndpoint
    public init(vip: IPEndpoint, target: IPEndpoint) { self.vip = vip; self.target = target }
    /// Parses `VIP:PORT=HOST:PORT`, either address IPv4 or `[IPv6]`. They may be of different
    /// families (`[VIP6]:443=192.0.2.5:443`): devices reach an IPv4 server through the IPv6
    /// address, their packets translated between the families (`SpliceEngine+FamilyTranslation`).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2, let v = IPEndpoint(parts[0]), let t = IPEndpoint(parts[1]),
              v.port != 0, t.port != 0 else { return nil }
        self.init(vip: v, target: t)
    }
    public var description: String { "\(vip)=\(target)" }
}

/// Timeouts of the flow table (RFC 5382 REQ-5: an established flow is kept at least 2 h 4 min
/// idle; embryonic and closing flows much less).
public struct FlowTimeouts: Sendable, Hashable {
    /// SYN seen, handshake not finished.
    public var embryonic: Duration = .seconds(75)
    public var establishedIdle: Duration = .seconds(7_440)
    /// One side has sent FIN (half-close): the other may still send for a while.
    public var halfClosedIdle: Duration = .seconds(600)
    /// Both FINs acknowledged, or RST seen: kept this long for late retransmissions.
    public var closedLinger: Duration = .seconds(30)
    public init() {}
}

/// Caps that keep the engine's memory bounded whatever the traffic.
public struct EngineLimits: Sendable, Hashable {
    public var maxFlows = 1_000_000
    /// Bytes of the in-flight copy (server -> device, not yet acknowledged) kept per flow.
    public var inFlightPerFlow = 4 << 20
    /// Bytes of in-flight copies kept across all flows.
    public var inFlightTotal = 512 << 20
    /// Flow slots examined per expiry tick (incremental sweep; no full-table pass per tick).
    public var expirySweepPerTick = 8192
    public var timeouts = FlowTimeouts()
    public init() {}
}

/// What the engine manages and how it rewrites (DESIGN §2-§3).
public struct EngineConfig: Sendable {
    /// The address the server sees (source of every server-side sub-connection to an IPv4
    /// server).
    public var nat: IPv4Address
    /// The address an IPv6 server sees; nil: IPv6 flows are not managed (they pass through).
    public var nat6: IPv6Address?
    /// Ports of `nat` handed to server-side sub-connections.
    public var natPorts: PortRange
    /// Transparent mode: destination ports managed when seen from device interfaces.
    public var intercepts: [PortRange]
    /// Service-address mode mappings.
    public var services: [ServiceMapping]
    public var limits: EngineLimits
    /// Verify IP and TCP checksums of every packet read (off only for offloaded input).
    public var verifyChecksums: Bool
    /// Hand plain flows to the kernel's forwarding (nil: the engine forwards every packet).
    public var kernelPath: KernelPathPolicy?
    /// Lower the MSS of forwarded SYNs to the known links' MTUs (`MSSClamp`); nil: never.
    public var mssClamp: MSSClamp?
    /// Where each engine's first search for a free NAT port starts, as an offset into its
    /// share of `natPorts` (`NATPortAllocator`): the proxy draws it at random when it starts;
    /// 0 (the default) starts at the bottom, as tests and replays expect.
    public var natPortStart: UInt32 = 0

    /// 61000-65534: above Linux's default ephemeral range (32768-60999), and 65535 is left out
    /// because the kernel refuses policy-rule port ranges that reach it.
    public static let defaultNATPorts = PortRange(61_000, 65_534)

    public init(nat: IPv4Address, nat6: IPv6Address? = nil, natPorts: PortRange = EngineConfig.defaultNATPorts,
                intercepts: [PortRange] = [], services: [ServiceMapping] = [],
                limits: EngineLimits = EngineLimits(), verifyChecksums: Bool = true, kernelPath: KernelPathPolicy? = nil) {
        self.nat = nat; self.nat6 = nat6; self.natPorts = natPorts; self.intercepts = intercepts
        self.services = services; self.limits = limits; self.verifyChecksums = verifyChecksums
        self.kernelPath = kernelPath
    }

    /// The NAT address of `family`, nil when that family is not managed.
    @inlinable public func natAddress(_ family: IPFamily) -> IPAddress? {
        switch family {
        case .ipv4: .v4(nat)
        case .ipv6: nat6.map { .v6($0) }
        }
    }
    /// Whether `address` is one of the NAT addresses.
    @inlinable public func isNAT(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let a): a == nat
        case .v6(let a): a == nat6
        }
    }

    /// Why a configuration cannot run, in words for the operator; nil when it is sound.
    public func problem() -> String? {
        if intercepts.isEmpty && services.isEmpty {
            return "nothing to manage: give at least one --intercept tcp/PORT or --service VIP:PORT=HOST:PORT"
        }
        if limits.expirySweepPerTick < 1 { return "the expiry sweep must examine at least one flow per tick" }
        if limits.maxFlows < 1 { return "the flow table must hold at least one flow" }
        // 1-65535 as an intercept means "every port" (a rule without a port selector).
        for r in [natPorts] + intercepts.filter({ $0 != PortRange(1, 65_535) }) where r.upper == 65_535 {
            return "port range \(r) reaches 65535, which Linux policy rules can't match (use at most 65534)"
        }
        for s in services where s.vip.port == 65_535 {
            return "service \(s) uses port 65535, which Linux policy rules can't match"
        }
        for s in services where natAddress(s.vip.family) == nil || natAddress(s.target.family) == nil {
            return "service \(s) is IPv6, and no IPv6 --nat address is given"
        }
        for s in services where isNAT(s.vip.address) && natPorts.contains(s.vip.port) {
            return "service \(s) uses a port inside the NAT port range \(natPorts)"
        }
        var seen = Set<IPEndpoint>()
        for s in services where !seen.insert(s.vip).inserted {
            return "service address \(s.vip) is given twice"
        }
        return nil
    }
}
