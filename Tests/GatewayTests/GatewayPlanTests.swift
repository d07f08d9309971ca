import Engine
import Testing
import Wire
@testable import GatewayHost

/// The plan used across the gateway tests: one device interface, two intercept ranges, one
/// service address.
func samplePlan(nat: IPv4Address = IPv4Address(10, 2, 0, 100)) -> GatewayPlan {
    GatewayPlan(tunName: "tsmp0", deviceInterfaces: ["veth-dev0"], uplinkInterface: "veth-up", nat: nat,
                natPorts: PortRange(61000, 65534), interceptPorts: [PortRange(80, 80), PortRange(8000, 8100)],
                serviceAddresses: [IPEndpoint(IPv4Address(10, 9, 0, 1), 443)])
}

@Suite struct GatewayPlanValidationTests {
    @Test func acceptsATypicalPlan() throws {
        try samplePlan().validate()
    }

    @Test func acceptsServiceModeOnly() throws {
        var plan = samplePlan()
        plan.deviceInterfaces = []
        plan.interceptPorts = []
        try plan.validate()
    }

    /// Each broken plan is refused with a sentence naming what is wrong.
    @Test(arguments: BrokenPlan.all)
    func refuses(_ broken: BrokenPlan) {
        var plan = samplePlan()
        broken.breakIt(&plan)
        #expect {
            try plan.validate()
        } throws: { error in
            "\(error)".contains(broken.expected)
        }
    }

    @Test func everyPortIsAnyPort() throws {
        var plan = samplePlan()
        plan.interceptPorts = [PortRange(1, 65535)]
        try plan.validate()
        let tcp = plan.interceptRules.filter { $0.ipProtocol == NetlinkRule.tcp }
        #expect(tcp.last?.destinationPorts == nil)
        #expect(tcp.last?.description == "pref 10100 iif veth-dev0 ipproto tcp lookup 7464 proto 0x74")
        #expect(plan.interceptRules.last?.description == "pref 10101 iif veth-dev0 ipproto 1 lookup 7464 proto 0x74")
    }

    @Test func listsEveryProblemAtOnce() {
        var plan = samplePlan()
        plan.table = 0
        plan.nat = IPv4Address(127, 0, 0, 1)
        #expect(throws: GatewayPlanError.self) { try plan.validate() }
        do {
            try plan.validate()
        } catch {
            #expect(error.problems.count == 2)
        }
    }
}

@Suite struct GatewayPlanChangesTests {
    let tsmp = NetlinkProtocolTag.tsmp

    /// The rules of `samplePlan`, in priority order.
    var sampleRules: [NetlinkRule] {
        [
            NetlinkRule(priority: 10000, table: 7464, inputInterface: "veth-up", destination: NetlinkPrefix("10.2.0.100/32"),
                        ipProtocol: 6, destinationPorts: 61000...65534, protocolTag: tsmp),
            NetlinkRule(priority: 10001, table: 7464, destination: NetlinkPrefix("10.9.0.1/32"),
                        ipProtocol: 6, destinationPorts: 443...443, protocolTag: tsmp),
            NetlinkRule(priority: 10100, table: 7464, inputInterface: "veth-dev0", ipProtocol: 6,
                        destinationPorts: 80...80, protocolTag: tsmp),
            NetlinkRule(priority: 10101, table: 7464, inputInterface: "veth-dev0", ipProtocol: 6,
                        destinationPorts: 8000...8100, protocolTag: tsmp),
        ]
    }
    /// ICMP toward the NAT address, and from the device interface (`GatewayPlan+ICMP`).
    var icmpReplyRule: NetlinkRule {
        NetlinkRule(priority: 9999, table: 7464, inputInterface: "veth-up", destination: NetlinkPrefix("10.2.0.100/32"),
                    ipProtocol: 1, protocolTag: tsmp)
    }
    var deviceICMPRule: NetlinkRule {
        NetlinkRule(priority: 10102, table: 7464, inputInterface: "veth-dev0", ipProtocol: 1, protocolTag: tsmp)
    }
    /// Every rule of `samplePlan`, in priority order.
    var allRules: [NetlinkRule] { [icmpReplyRule] + sampleRules + [deviceICMPRule] }

    @Test func interceptRulesFollowTheDecidedPriorities() {
        #expect(samplePlan().interceptRules == allRules)
    }

    @Test func transparentRulesAreOnePerDeviceAndRange() {
        var plan = samplePlan()
        plan.deviceInterfaces = ["a", "b"]
        let transparent = plan.interceptRules.filter { $0.priority >= 10100 && $0.ipProtocol == NetlinkRule.tcp }
        #expect(transparent.map(\.priority) == [10100, 10101, 10102, 10103])
        let icmp = plan.interceptRules.filter { $0.priority >= 10100 && $0.ipProtocol == GatewayPlan.icmpProtocol }
        #expect(icmp.map(\.priority) == [10104, 10105] && icmp.map(\.inputInterface) == ["a", "b"])
        #expect(transparent.map(\.inputInterface) == ["a", "a", "b", "b"])
        #expect(transparent.map(\.destinationPorts) == [80...80, 8000...8100, 80...80, 8000...8100])
    }

    @Test func notOwnedNATLeavesTheLocalRuleAlone() {
        let changes = samplePlan().changes(given: GatewayFacts())
        #expect(changes == [
            .linkUp(link: "tsmp0"),
            .route(NetlinkRoute(table: 7464, destination: .any, protocolTag: tsmp, metric: UInt32.max, kind: .blackhole)),
            .route(NetlinkRoute(table: 7464, destination: .any, device: "tsmp0", protocolTag: tsmp)),
        ] + allRules.map { .rule($0) } + [
            .sysctl(key: "net.ipv4.ip_forward", previous: "0", value: "1"),
        ])
    }

    @Test func ownedNATMovesTheLocalRuleBetweenReplyAndTransparentRules() {
        let plan = samplePlan()
        let changes = plan.changes(given: GatewayFacts(ownedAddresses: [.v4(plan.nat)]))
        let movedLocal = NetlinkRule(priority: 10050, table: NetlinkTable.local, protocolTag: tsmp)
        #expect(changes == [
            .linkUp(link: "tsmp0"),
            .route(plan.failClosedRoute), .route(plan.tunRoute),
            .rule(icmpReplyRule), .rule(sampleRules[0]), .rule(sampleRules[1]),
            .rule(movedLocal), .removedRule(.kernelLocal),   // add the new one before deleting pref 0
            .rule(sampleRules[2]), .rule(sampleRules[3]), .rule(deviceICMPRule),
            .sysctl(key: "net.ipv4.ip_forward", previous: "0", value: "1"),
        ])
    }

    @Test("an IPv6 NAT address: the same rules in ip -6 rule, ICMPv6 after lookup local, IPv6 routes and forwarding")
    func ipv6Plan() throws {
        var plan = samplePlan()
        plan.nat6 = IPv6Address("fd00:2::1")
        plan.serviceAddresses.append(IPEndpoint("[fd00:9::9]:443")!)
        try plan.validate()
        let nat6 = IPAddress("fd00:2::1")!
        var facts = GatewayFacts(ownedAddresses: [.v4(plan.nat), nat6])
        facts.ipv6Forward = "0"
        let changes = plan.changes(given: facts)
        let v6 = plan.interceptRules(.ipv6)
        #expect(v6.allSatisfy { $0.family == .ipv6 } && plan.interceptRules(.ipv4).allSatisfy { $0.family == .ipv4 })
        #expect(v6.map(\.priority) == [10000, 10002, 10051, 10100, 10101, 10102])
        #expect(v6.first { $0.priority == 10000 }?.destination == .host(nat6))
        #expect(v6.first { $0.priority == 10051 }?.ipProtocol == GatewayPlan.icmpv6Protocol)
        #expect(v6.first { $0.priority == 10102 }?.ipProtocol == GatewayPlan.icmpv6Protocol)
        // IPv6's own moved local rule, removed kernel rule, routes and forwarding.
        let movedLocal6 = NetlinkRule(priority: 10050, table: NetlinkTable.local, protocolTag: tsmp, family: .ipv6)
        #expect(changes.contains(.rule(movedLocal6)) && changes.contains(.removedRule(.kernelLocal6)))
        #expect(changes.contains(.route(plan.tunRoute(.ipv6))) && changes.contains(.route(plan.failClosedRoute(.ipv6))))
        #expect(changes.contains(.sysctl(key: "net.ipv6.conf.all.forwarding", previous: "0", value: "1")))
        // The ICMPv6 reply rule goes in after the local rule moved, so neighbour discovery stays local.
        let icmp6Rule = try #require(v6.first { $0.priority == 10051 })
        let icmp6 = try #require(changes.firstIndex(of: .rule(icmp6Rule)))
        let moved = try #require(changes.firstIndex(of: .rule(movedLocal6)))
        #expect(moved < icmp6)
        // Without an IPv6 NAT address an IPv6 service is refused.
        plan.nat6 = nil
        #expect(throws: GatewayPlanError.self) { try plan.validate() }
    }

    @Test func ownedVIPAloneAlsoMovesTheLocalRule() {
        let plan = samplePlan()
        let facts = GatewayFacts(ownedAddresses: [.v4(IPv4Address(10, 9, 0, 1))])
        #expect(plan.needsLocalRuleMove(given: facts))
        #expect(plan.changes(given: facts).contains(.removedRule(.kernelLocal)))
    }

    @Test func theRecordedLocalRuleIsTheOneFound() {
        // Restoring must give back exactly what was there, protocol tag included.
        let plan = samplePlan()
        let found = NetlinkRule(priority: 0, table: NetlinkTable.local)
        let changes = plan.changes(given: GatewayFacts(ownedAddresses: [.v4(plan.nat)], localRule: found))
        #expect(changes.contains(.removedRule(found)))
    }

    @Test func noLocalRuleAtZeroMeansNothingToMove() {
        let plan = samplePlan()
        let changes = plan.changes(given: GatewayFacts(ownedAddresses: [.v4(plan.nat)], localRule: nil))
        #expect(!changes.contains { if case .removedRule = $0 { true } else { false } })
        #expect(!changes.contains { if case .rule(let r) = $0 { r.priority == 10050 } else { false } })
    }

    @Test func onlyWhatDiffersIsChanged() {
        var plan = samplePlan()
        plan.tunMTU = 1500
        let changes = plan.changes(given: GatewayFacts(tunIsUp: true, tunMTU: 1500, ipForward: "1"))
        #expect(changes == [.route(plan.failClosedRoute), .route(plan.tunRoute)] + allRules.map { .rule($0) })
    }

    @Test func mtuComesFirstAndAddressBringsLooseReversePathFilterAndAcceptLocal() {
        var plan = samplePlan()
        plan.tunMTU = 9000
        plan.tunAddress = NetlinkPrefix("10.99.0.1/32")
        let changes = plan.changes(given: GatewayFacts(tunMTU: 1500, tunRPFilter: "1"))
        #expect(Array(changes.prefix(7)) == [
            .linkMTU(link: "tsmp0", previous: 1500, mtu: 9000),
            .linkUp(link: "tsmp0"),
            .address(NetlinkPrefix("10.99.0.1/32")!, link: "tsmp0"),
            .sysctl(key: "net.ipv4.conf.tsmp0.rp_filter", previous: "1", value: "2"),
            .sysctl(key: "net.ipv4.conf.tsmp0.accept_local", previous: "0", value: "1"),
            .route(plan.failClosedRoute), .route(plan.tunRoute),
        ])
    }

    /// With the kernel path, the uplink's reverse-path check sees marks (src_valid_mark), set
    /// before the table that marks the server's segments; without it, nothing changes there.
    @Test func kernelPathTurnsOnSrcValidMarkOnTheUplinkBeforeItsTable() {
        var plan = samplePlan()
        plan.kernelPath = KernelPathTable(tunName: plan.tunName, uplink: plan.uplinkInterface, nat: plan.nat)
        var facts = GatewayFacts()
        facts.uplinkSrcValidMark = "0"
        let changes = plan.changes(given: facts)
        let mark = GatewayChange.sysctl(key: "net.ipv4.conf.veth-up.src_valid_mark", previous: "0", value: "1")
        let markAt = changes.firstIndex(of: mark)
        let tableAt = changes.firstIndex { if case .nftTable(let name, _) = $0 { name.hasPrefix("tsmp_kernel_path") } else { false } }
        #expect(markAt != nil && tableAt != nil && markAt! < tableAt!)
        facts.uplinkSrcValidMark = "1"
        #expect(!plan.changes(given: facts).contains { $0.description.contains("src_valid_mark") })
        facts.uplinkSrcValidMark = "0"
        #expect(!samplePlan().changes(given: facts).contains { $0.description.contains("src_valid_mark") })
    }

    /// Issue 12 item 5: the kernel makes no IPv6 link-local address on the TUN (so it sends no
    /// router solicitations out of it), set before the TUN goes up and undone after it is down.
    @Test func noIPv6LinkLocalAddressOnTheTunBeforeItGoesUp() {
        var facts = GatewayFacts()
        facts.tunAddrGenMode = "0"
        let changes = samplePlan().changes(given: facts)
        #expect(Array(changes.prefix(2)) == [
            .sysctl(key: "net.ipv6.conf.tsmp0.addr_gen_mode", previous: "0", value: "1"),
            .linkUp(link: "tsmp0"),
        ])
        // No IPv6 in the kernel, or already "none": nothing to change.
        facts.tunAddrGenMode = nil
        #expect(!samplePlan().changes(given: facts).contains { $0.description.contains("addr_gen_mode") })
        facts.tunAddrGenMode = "1"
        #expect(!samplePlan().changes(given: facts).contains { $0.description.contains("addr_gen_mode") })
    }

    @Test func rulesReadLikeIPRule() {
        #expect(sampleRules[0].description
                == "pref 10000 iif veth-up to 10.2.0.100/32 ipproto tcp dport 61000-65534 lookup 7464 proto 0x74")
        #expect(sampleRules[2].description == "pref 10100 iif veth-dev0 ipproto tcp dport 80 lookup 7464 proto 0x74")
        #expect(icmpReplyRule.description == "pref 9999 iif veth-up to 10.2.0.100/32 ipproto 1 lookup 7464 proto 0x74")
        #expect(NetlinkRule.kernelLocal.description == "pref 0 lookup local proto kernel")
        #expect(samplePlan().tunRoute.description == "default dev tsmp0 table 7464 proto 0x74")
        #expect(samplePlan().failClosedRoute.description == "blackhole default table 7464 proto 0x74 metric 4294967295")
    }
}

@Suite struct NetlinkPrefixTests {
    @Test func parsesAndPrints() {
        #expect(NetlinkPrefix("10.1.0.0/24")?.description == "10.1.0.0/24")
        #expect(NetlinkPrefix("10.1.0.7")?.description == "10.1.0.7/32")
        #expect(NetlinkPrefix("0.0.0.0/0") == .any)
        for bad in ["10.1.0.0/33", "10.1.0/24", "10.1.0.0/", "/24", "10.1.0.0/24/1", "10.1.0.0/+4"] {
            #expect(NetlinkPrefix(bad) == nil, "\(bad)")
        }
    }

    @Test func containsByMask() {
        let prefix = NetlinkPrefix("10.1.0.0/24")!
        #expect(prefix.contains(IPv4Address(10, 1, 0, 200)))
        #expect(!prefix.contains(IPv4Address(10, 1, 1, 0)))
        #expect(NetlinkPrefix.any.contains(IPv4Address(1, 2, 3, 4)))
    }
}

/// A way to break `samplePlan`, and what the refusal must say.
struct BrokenPlan: Sendable, CustomTestStringConvertible {
    let name: String
    let expected: String
    let breakIt: @Sendable (inout GatewayPlan) -> Void

    init(_ name: String, _ expected: String, _ breakIt: @escaping @Sendable (inout GatewayPlan) -> Void) {
        self.name = name
        self.expected = expected
        self.breakIt = breakIt
    }

    var testDescription: String { name }

    static let all: [BrokenPlan] = [
        BrokenPlan("empty TUN name", "TUN name is empty") { p in p.tunName = "" },
        BrokenPlan("long name", "longer than 15 bytes") { p in p.uplinkInterface = "a-very-long-interface" },
        BrokenPlan("slash in name", "not a valid interface name") { p in p.deviceInterfaces = ["eth/0"] },
        BrokenPlan("duplicate device", "listed twice") { p in p.deviceInterfaces = ["veth-dev0", "veth-dev0"] },
        BrokenPlan("TUN as device", "cannot also be a device") { p in p.deviceInterfaces = ["tsmp0"] },
        BrokenPlan("main table", "table 254 is reserved") { p in p.table = 254 },
        BrokenPlan("local table", "table 255 is reserved") { p in p.table = 255 },
        BrokenPlan("NAT 0.0.0.0", "NAT address 0.0.0.0 is in 0.0.0.0/8") { p in p.nat = IPv4Address(0) },
        BrokenPlan("NAT loopback", "loopback") { p in p.nat = IPv4Address(127, 0, 0, 1) },
        BrokenPlan("NAT multicast", "multicast") { p in p.nat = IPv4Address(224, 0, 0, 5) },
        BrokenPlan("NAT broadcast", "reserved or broadcast") { p in p.nat = IPv4Address(255, 255, 255, 255) },
        BrokenPlan("reversed NAT ports", "NAT port range 2000-1000") { p in p.natPorts = PortRange(2000, 1000) },
        BrokenPlan("NAT port 0", "NAT port range 0-10") { p in p.natPorts = PortRange(0, 10) },
        BrokenPlan("reversed intercept", "intercept port range 90-80") { p in p.interceptPorts = [PortRange(90, 80)] },
        BrokenPlan("devices without ports or services", "no intercept ports and no service addresses") { p in
            p.interceptPorts = []; p.serviceAddresses = [] },
        BrokenPlan("ports without devices", "no device interface") { p in p.deviceInterfaces = [] },
        BrokenPlan("nothing", "nothing to intercept") { p in
            p.deviceInterfaces = []; p.interceptPorts = []; p.serviceAddresses = [] },
        BrokenPlan("VIP port 0", "port 0") { p in p.serviceAddresses = [IPEndpoint(IPv4Address(10, 9, 0, 1), 0)] },
        BrokenPlan("VIP twice", "service address is listed twice") { p in p.serviceAddresses += p.serviceAddresses },
        BrokenPlan("VIP in NAT range", "inside the NAT port range") { p in p.serviceAddresses = [IPEndpoint(p.nat, 62000)] },
        BrokenPlan("too many VIPs", "too many service addresses") { p in
            p.serviceAddresses = (1...50).map { IPEndpoint(IPv4Address(10, 9, 0, UInt8($0)), 443) } },
        BrokenPlan("TUN MTU", "TUN MTU 20") { p in p.tunMTU = 20 },
        BrokenPlan("NAT port 65535", "the kernel's rule port ranges cannot hold 65535 (use 61000-65534)") { p in
            p.natPorts = PortRange(61000, 65535) },
        BrokenPlan("intercept to 65535", "intercept port range 8000-65535 ends above 65534") { p in
            p.interceptPorts = [PortRange(8000, 65535)] },
    ]
}
