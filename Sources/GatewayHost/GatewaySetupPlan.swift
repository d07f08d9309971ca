import Wire

/// What the gateway's kernel configuration must achieve (DESIGN §2, "Into user space"): which
/// packets policy routing steers into the TUN. `GatewaySetup` turns it into kernel objects.
///
/// Rule priorities, lowest first:
/// - 9999: ICMP errors to the NAT address (`GatewayPlan+ICMP`);
/// - 10000: replies, `iif UPLINK to NAT/32 ipproto tcp dport NATLO-NATHI lookup TABLE`;
/// - 10001+i: service addresses, `to VIP/32 ipproto tcp dport PORT lookup TABLE`;
/// - 10050: the kernel's `lookup local`, moved here from pref 0 only when the NAT address or a
///   VIP is the gateway's own (otherwise the local rule would deliver those packets locally
///   and the kernel would answer them with RSTs);
/// - 10100+i: transparent interception, `iif DEVICE ipproto tcp dport LO-HI lookup TABLE`,
///   one per device interface and intercept range, then ICMP from each device interface.
///
/// With an IPv6 NAT address (`nat6`) the same rules exist for IPv6 (`ip -6 rule`, the same
/// priorities: each family has its own list), ICMPv6 in ICMP's place, with the table's IPv6
/// routes and IPv6 forwarding.
public struct GatewayPlan: Codable, Sendable, Equatable {
    /// Rule priorities (see the type's documentation).
    public enum Priority {
        public static let reply: UInt32 = 10000
        public static let firstService: UInt32 = 10001
        public static let movedLocal: UInt32 = 10050
        public static let firstTransparent: UInt32 = 10100
        /// Services fit between the reply rule and the moved local rule.
        public static let maxServices = Int(movedLocal - firstService)
        /// Transparent rules stay well below the kernel's `32766: lookup main`.
        public static let maxTransparentRules = 10000
    }

    public static let defaultTable: UInt32 = 7464
    public static let defaultTunName = "tsmp0"

    /// The TUN device's name (created by PacketIO's TunDevice before setup).
    public var tunName: String
    /// The routing table holding `default dev TUN`.
    public var table: UInt32
    /// Interfaces facing the devices (transparent mode); empty for service mode only.
    public var deviceInterfaces: [String]
    /// The interface facing the servers; replies to the NAT address arrive on it.
    public var uplinkInterface: String
    /// The source address servers see.
    public var nat: IPv4Address
    /// The source address IPv6 servers see; nil: IPv6 is not managed (no IPv6 rules, routes
    /// or forwarding). Absent from state files written before IPv6.
    public var nat6: IPv6Address?
    /// The source ports the proxy uses on the server side.
    public var natPorts: PortRange
    /// Destination ports intercepted on the device interfaces.
    public var interceptPorts: [PortRange]
    /// Service addresses (VIP:PORT or [VIP6]:PORT) devices connect to.
    public var serviceAddresses: [IPEndpoint]
    /// An address for the TUN. Only needed when the data plane writes packets into the TUN
    /// whose sources route via another interface (rp_filter then has to be loose and the TUN
    /// must have an IPv4 address); the decided path sends through a raw socket, so nil.
    public var tunAddress: NetlinkPrefix?
    /// The TUN's MTU, when it should differ from what the TUN was created with.
    public var tunMTU: UInt32?
    /// The kernel path's nftables table (`--kernel-path`): transparent rules then skip packets
    /// it marks. nil: every managed packet goes through the TUN.
    public var kernelPath: KernelPathTable?
    /// Fragment reassembly before routing (`ReassemblyTable`; the TUN's MTU then is 65,535).
    /// nil: fragments of managed flows are not reassembled (`--no-reassemble`).
    public var reassembly: ReassemblyTable?
    /// The media relay's redirects (`--intercept rtsp/PORT`, `MediaInterceptTable`); nil: no
    /// RTSP is relayed. Absent from state files written before it.
    public var mediaIntercept: MediaInterceptTable?

    public init(tunName: String = GatewayPlan.defaultTunName, table: UInt32 = GatewayPlan.defaultTable,
                deviceInterfaces: [String] = [], uplinkInterface: String, nat: IPv4Address, nat6: IPv6Address? = nil,
                natPorts: PortRange, interceptPorts: [PortRange] = [], serviceAddresses: [IPEndpoint] = [],
                tunAddress: NetlinkPrefix? = nil, tunMTU: UInt32? = nil, kernelPath: KernelPathTable? = nil,
                reassembly: ReassemblyTable? = nil, mediaIntercept: MediaInterceptTable? = nil) {
        self.mediaIntercept = mediaIntercept
        self.kernelPath = kernelPath
        self.reassembly = reassembly
        self.tunName = tunName
        self.table = table
        self.deviceInterfaces = deviceInterfaces
        self.uplinkInterface = uplinkInterface
        self.nat = nat
        self.nat6 = nat6
        self.natPorts = natPorts
        self.interceptPorts = interceptPorts
        self.serviceAddresses = serviceAddresses
        self.tunAddress = tunAddress
        self.tunMTU = tunMTU
    }
}

// MARK: - Validation (no kernel access)

/// Why a plan cannot be installed; nothing was changed.
public struct GatewayPlanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One sentence per problem.
    public var problems: [String]
    public var description: String {
        "invalid gateway plan: " + problems.joined(separator: "; ")
    }
}

extension GatewayPlan {
    /// Checks everything that can be checked without the kernel.
    public func validate() throws(GatewayPlanError) {
        var problems: [String] = []
        func check(_ condition: Bool, _ problem: @autoclosure () -> String) {
            if !condition { problems.append(problem()) }
        }

        for (role, name) in [("TUN", tunName), ("uplink interface", uplinkInterface)]
            + deviceInterfaces.map({ ("device interface", $0) }) {
            if let problem = Self.interfaceNameProblem(name) { problems.append("\(role) \(problem)") }
        }
        check(Set(deviceInterfaces).count == deviceInterfaces.count, "a device interface is listed twice")
        check(!deviceInterfaces.contains(tunName) && uplinkInterface != tunName,
              "the TUN \(tunName) cannot also be a device or uplink interface")
        check(!NetlinkTable.reserved.contains(table),
              "table \(table) is reserved (0, 252, 253, main 254, local 255); use another (default \(Self.defaultTable))")

        if let problem = Self.addressProblem(nat) { problems.append("NAT address \(nat) \(problem)") }
        check(natPorts.lower >= 1 && natPorts.lower <= natPorts.upper,
              "NAT port range \(natPorts) must be 1-65535 with low <= high")
        check(natPorts.upper <= Self.highestRulePort,
              "NAT port range \(natPorts) ends above \(Self.highestRulePort): the kernel's rule port ranges cannot hold 65535 (use \(natPorts.lower)-\(Self.highestRulePort))")

        for range in interceptPorts {
            check(range.lower >= 1 && range.lower <= range.upper,
                  "intercept port range \(range) must be 1-65535 with low <= high")
            check(range.upper <= Self.highestRulePort || range.lower == 1,
                  "intercept port range \(range) ends above \(Self.highestRulePort): the kernel's rule port ranges cannot hold 65535 (use \(range.lower)-\(Self.highestRulePort), or 1-65535 for every port)")
        }
        // Device interfaces without intercept ports are fine in service mode (VIP rules match
        // any interface); intercept ports need device interfaces to match on.
        check(!(deviceInterfaces.isEmpty && !interceptPorts.isEmpty), "intercept ports are given but no device interface")
        check(!(interceptPorts.isEmpty && serviceAddresses.isEmpty && mediaIntercept == nil) || deviceInterfaces.isEmpty,
              "device interfaces are given but no intercept ports and no service addresses")
        check(!deviceInterfaces.isEmpty || !serviceAddresses.isEmpty,
              "nothing to intercept: give device interfaces with intercept ports, or service addresses")
        check(deviceInterfaces.count * (interceptPorts.count + 1) <= Priority.maxTransparentRules,
              "too many device interface x intercept range pairs (at most \(Priority.maxTransparentRules))")

        check(serviceAddresses.count <= Priority.maxServices, "too many service addresses (at most \(Priority.maxServices))")
        check(Set(serviceAddresses).count == serviceAddresses.count, "a service address is listed twice")
        if let nat6, let problem = Self.addressProblem(nat6) { problems.append("NAT address \(nat6) \(problem)") }
        for service in serviceAddresses {
            if let problem = Self.addressProblem(service.address) { problems.append("service address \(service) \(problem)") }
            check(service.port != 0, "service address \(service) has port 0")
            check(!(natAddresses.contains(service.address) && natPorts.contains(service.port)),
                  "service address \(service) is inside the NAT port range \(natPorts) of its NAT address")
            check(service.family == .ipv4 || nat6 != nil, "service address \(service) is IPv6, and there is no IPv6 NAT address")
        }

        if let tunAddress, case .v4(let a) = tunAddress.address, let problem = Self.addressProblem(a) {
            problems.append("TUN address \(tunAddress) \(problem)")
        }
        if let tunMTU { check((68...65535).contains(tunMTU), "TUN MTU \(tunMTU) must be 68-65535") }

        if !problems.isEmpty { throw GatewayPlanError(problems: problems) }
    }

    /// The kernel refuses rule port ranges that reach 65535 (fib_rule_port_range_valid:
    /// `end < 0xffff`), so ranges stop here; "1-65535" is expressed as no port selector.
    public static let highestRulePort: UInt16 = 65534

    /// Why `name` cannot be a Linux interface name (dev_valid_name), or nil.
    static func interfaceNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "name is empty" }
        if name.utf8.count >= 16 { return "name \"\(name)\" is longer than 15 bytes" }
        if name == "." || name == ".." || name.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) {
            return "name \"\(name)\" is not a valid interface name"
        }
        return nil
    }

    /// Why `address` cannot be a unicast address of ours or a server's, or nil.
    static func addressProblem(_ address: IPAddress) -> String? {
        switch address {
        case .v4(let a): addressProblem(a)
        case .v6(let a): addressProblem(a)
        }
    }

    /// IPv6 (RFC 4291 §2.4): not unspecified, loopback, multicast or link-local (a NAT or
    /// service address is routed to, across links).
    static func addressProblem(_ address: IPv6Address) -> String? {
        if address.high == 0 && address.low == 0 { return "is the unspecified address ::" }
        if address.high == 0 && address.low == 1 { return "is the loopback address ::1" }
        if address.high >> 56 == 0xFF { return "is a multicast address" }
        if address.high >> 54 == 0x3FA { return "is a link-local address (fe80::/10)" }
        return nil
    }

    /// The NAT addresses, IPv4's and (when given) IPv6's.
    public var natAddresses: [IPAddress] { [.v4(nat)] + (nat6.map { [.v6($0)] } ?? []) }
    /// The families the gateway manages.
    public var families: [IPFamily] { nat6 == nil ? [.ipv4] : [.ipv4, .ipv6] }

    /// Why `address` cannot be a unicast address of ours or a server's, or nil.
    static func addressProblem(_ address: IPv4Address) -> String? {
        let first = address.value >> 24
        if first == 0 { return "is in 0.0.0.0/8 (this network)" }
        if first == 127 { return "is a loopback address" }
        if first >= 224 && first < 240 { return "is a multicast address" }
        if first >= 240 { return "is reserved or broadcast" }
        return nil
    }
}

// MARK: - The changes a plan means on a given gateway (no kernel access)

extension GatewayPlan {
    /// Whether the `lookup local` rule of `family` must move below the reply and service rules.
    public func needsLocalRuleMove(given facts: GatewayFacts, family: IPFamily = .ipv4) -> Bool {
        natAddresses.contains { $0.family == family && facts.ownedAddresses.contains($0) }
            || serviceAddresses.contains { $0.family == family && facts.ownedAddresses.contains($0.address) }
    }

    /// The policy rules that steer packets into the TUN, IPv4's then IPv6's, each family in
    /// priority order (without the moved local rules).
    public var interceptRules: [NetlinkRule] {
        families.flatMap(interceptRules)
    }

    /// The policy rules of `family`, in priority order.
    public func interceptRules(_ family: IPFamily) -> [NetlinkRule] {
        let natAddress: IPAddress
        switch family {
        case .ipv4: natAddress = .v4(nat)
        case .ipv6:
            guard let nat6 else { return [] }
            natAddress = .v6(nat6)
        }
        var rules = icmpReplyRule(family).map { [$0] } ?? []
        rules.append(NetlinkRule(priority: Priority.reply, table: table, inputInterface: uplinkInterface,
                                 destination: .host(natAddress), ipProtocol: NetlinkRule.tcp,
                                 destinationPorts: Self.ports(natPorts), protocolTag: NetlinkProtocolTag.tsmp))
        for (i, service) in serviceAddresses.enumerated() where service.family == family {
            rules.append(NetlinkRule(priority: Priority.firstService + UInt32(i), table: table,
                                     destination: .host(service.address), ipProtocol: NetlinkRule.tcp,
                                     destinationPorts: service.port...service.port, protocolTag: NetlinkProtocolTag.tsmp))
        }
        var i: UInt32 = 0
        for device in deviceInterfaces {
            for range in interceptPorts {
                rules.append(NetlinkRule(priority: Priority.firstTransparent + i, table: table, inputInterface: device,
                                         ipProtocol: NetlinkRule.tcp, destinationPorts: Self.ports(range),
                                         markClear: kernelPath == nil ? nil : KernelPathTable.mark,
                                         protocolTag: NetlinkProtocolTag.tsmp, family: family))
                i += 1
            }
        }
        rules += deviceICMPRules(from: Priority.firstTransparent + i, family: family)
        return rules.sorted { $0.priority < $1.priority }
    }

    /// The rule's "dport" for `range`; nil (any port) for 1-65535, which the kernel cannot
    /// hold as a range.
    static func ports(_ range: PortRange) -> ClosedRange<UInt16>? {
        if range.lower <= 1 && range.upper == UInt16.max { return nil }
        return range.lower...max(range.lower, range.upper)
    }

    /// The route that hands everything looked up in `table` to the TUN.
    public var tunRoute: NetlinkRoute { tunRoute(.ipv4) }
    /// The same for `family`.
    /// (An IPv6 route gets metric 1024 when none is given, IP6_RT_PRIO_USER: the plan names it,
    /// so the route reads back as planned.)
    public func tunRoute(_ family: IPFamily) -> NetlinkRoute {
        NetlinkRoute(table: table, destination: .any(family), device: tunName, protocolTag: NetlinkProtocolTag.tsmp,
                     metric: family == .ipv6 ? 1024 : 0)
    }

    /// The table's last resort, under the TUN route: while no proxy runs (crash, kill -9,
    /// upgrade) the TUN and its route are gone but the policy rules still send managed
    /// packets into this table; without this route they would fall through to the main table
    /// and leave un-NAT'd (the device's own address toward servers). A blackhole drops them
    /// silently, so the devices retransmit and a restarted proxy takes them up (fail closed).
    public var failClosedRoute: NetlinkRoute { failClosedRoute(.ipv4) }
    /// The same for `family`.
    public func failClosedRoute(_ family: IPFamily) -> NetlinkRoute {
        NetlinkRoute(table: table, destination: .any(family), protocolTag: NetlinkProtocolTag.tsmp, metric: UInt32.max,
                     kind: .blackhole)
    }

    /// IPv6 forwarding, for every interface (ip-sysctl.rst: conf/all/forwarding).
    public static let ipv6ForwardKey = "net.ipv6.conf.all.forwarding"

    /// The sysctl holding the TUN's reverse-path filter mode.
    public var tunRPFilterKey: String { Sysctl.key("net.ipv4.conf", interface: tunName, "rp_filter") }
    /// The sysctl that lets packets written into the TUN carry a source address the gateway
    /// owns (the NAT address toward the server): without it they are martians.
    public var tunAcceptLocalKey: String { Sysctl.key("net.ipv4.conf", interface: tunName, "accept_local") }
    /// With the kernel path, the server's segments of a flow it forwards carry its mark from
    /// prerouting on (`KernelPathTable`), and the uplink's reverse-path check must see it: that
    /// check looks the route back up as if the device sent to the server (out the device
    /// interface, the ports swapped), which matches the transparent rules and finds the
    /// proxy's table. While a proxy runs that table's TUN route passes a loose check; while
    /// none runs only the fail-closed blackhole is left, and the kernel dropped every such
    /// segment (TcpExtIPReversePathFilter): kernel-path flows stalled across a restart. With
    /// src_valid_mark the check carries the mark, the rules (fwmark 0/0x74000000) step aside,
    /// and the main table's route to the server passes.
    public var uplinkSrcValidMarkKey: String { Sysctl.key("net.ipv4.conf", interface: uplinkInterface, "src_valid_mark") }

    /// The sysctl that decides how the kernel makes the TUN's IPv6 link-local address
    /// (ip-sysctl.rst: 0 EUI-64, 1 none, 2 and 3 stable privacy).
    public var tunAddrGenModeKey: String { Sysctl.key("net.ipv6.conf", interface: tunName, "addr_gen_mode") }
    /// addr_gen_mode "1": no link-local address on the TUN, so the kernel sends no router
    /// solicitations (RFC 4861 §6.3.7) or neighbour discovery out of it; the engine would count
    /// each as an IPv6 drop on an idle gateway (issue 12 item 5). IPv6 stays enabled on the TUN
    /// (disable_ipv6 would make the kernel drop IPv6 routed into it, which the IPv6 data plane
    /// needs). With IPv6 forwarding on, the kernel still reports its all-routers groups (MLD,
    /// RFC 3810) from "::": no sysctl turns those off.
    public static let noLinkLocalAddress = "1"

    /// Every change setup makes, in the order it makes them (teardown undoes them in reverse):
    /// no IPv6 link-local address on the TUN (before it goes up: the address is made then),
    /// TUN MTU and up, TUN address (with loose rp_filter on the TUN, which packets written
    /// into it need), the table's fail-closed and default routes, reply and service rules, the
    /// local rule's move (add at 10050 first, then delete pref 0, so local delivery never
    /// stops), transparent rules, and ip_forward last.
    public func changes(given facts: GatewayFacts) -> [GatewayChange] {
        var changes: [GatewayChange] = []
        if let mode = facts.tunAddrGenMode, mode != Self.noLinkLocalAddress {
            changes.append(.sysctl(key: tunAddrGenModeKey, previous: mode, value: Self.noLinkLocalAddress))
        }
        if let tunMTU, tunMTU != facts.tunMTU {
            changes.append(.linkMTU(link: tunName, previous: facts.tunMTU, mtu: tunMTU))
        }
        if !facts.tunIsUp { changes.append(.linkUp(link: tunName)) }
        if let tunAddress {
            changes.append(.address(tunAddress, link: tunName))
            if facts.tunRPFilter != "2" {
                changes.append(.sysctl(key: tunRPFilterKey, previous: facts.tunRPFilter, value: "2"))
            }
            if facts.tunAcceptLocal != "1" {
                changes.append(.sysctl(key: tunAcceptLocalKey, previous: facts.tunAcceptLocal, value: "1"))
            }
        }
        for family in families {
            changes.append(.route(failClosedRoute(family)))
            changes.append(.route(tunRoute(family)))
        }
        for family in families {
            let rules = interceptRules(family)
            changes += rules.filter { $0.priority < Priority.movedLocal }.map { .rule($0) }
            if needsLocalRuleMove(given: facts, family: family), let local = family == .ipv4 ? facts.localRule : facts.localRule6 {
                changes.append(.rule(NetlinkRule(priority: Priority.movedLocal, table: NetlinkTable.local,
                                                 protocolTag: NetlinkProtocolTag.tsmp, family: family)))
                changes.append(.removedRule(local))
            }
            changes += rules.filter { $0.priority > Priority.movedLocal }.map { .rule($0) }
        }
        if let kernelPath {
            if facts.uplinkSrcValidMark != "1" {
                changes.append(.sysctl(key: uplinkSrcValidMarkKey, previous: facts.uplinkSrcValidMark, value: "1"))
            }
            changes.append(.nftTable(name: kernelPath.name, ruleset: kernelPath.ruleset))
        }
        if let reassembly { changes.append(.nftTable(name: reassembly.name, ruleset: reassembly.ruleset)) }
        if let mediaIntercept { changes.append(.nftTable(name: mediaIntercept.name, ruleset: mediaIntercept.ruleset)) }
        if facts.ipForward != "1" {
            changes.append(.sysctl(key: "net.ipv4.ip_forward", previous: facts.ipForward, value: "1"))
        }
        if nat6 != nil && facts.ipv6Forward != "1" {
            changes.append(.sysctl(key: Self.ipv6ForwardKey, previous: facts.ipv6Forward, value: "1"))
        }
        return changes
    }
}
