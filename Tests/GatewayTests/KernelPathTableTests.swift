import Engine
import Forwarding
import Testing
import Wire
@testable import GatewayHost

/// The kernel path's nftables text and counters, without a kernel (the namespace test installs them).
@Suite struct KernelPathTableTests {
    let table = KernelPathTable(tunName: "tsmp0", uplink: "veth-up", nat: IPv4Address(10, 2, 0, 1))
    let flows = [
        KernelPathFlow(id: FlowID(1), device: IPEndpoint("10.1.0.2:40000")!, server: IPEndpoint("10.2.0.2:80")!,
                       nat: IPEndpoint("10.2.0.1:61001")!),
        KernelPathFlow(id: FlowID(2), device: IPEndpoint("10.1.0.3:40001")!, server: IPEndpoint("10.2.0.2:80")!,
                       nat: IPEndpoint("10.2.0.1:61002")!),
    ]

    @Test func theRulesetRewritesBothWaysAndLeavesTheTunAndControlSegmentsAlone() {
        let text = table.ruleset
        #expect(table.name == "tsmp_kernel_path_tsmp0")
        #expect(text.contains("iifname \"tsmp0\" return"))
        #expect(text.contains("tcp flags & (fin | syn | rst) != 0 return"))
        #expect(text.contains("@to_server meta mark set meta mark | 0x74000000 return"))
        #expect(text.contains("ip daddr 10.2.0.1 ip saddr . tcp sport . tcp dport @to_device ip daddr set"))
        #expect(text.contains("map @to_device_port meta mark set meta mark | 0x74000000\n"))
        #expect(text.contains("meta mark & 0x74000000 == 0x74000000 oifname \"veth-up\" tcp sport set"))
        #expect(text.contains("ip saddr set 10.2.0.1"))
        #expect(KernelPathTable(tunName: "a-b.c", uplink: "u", nat: IPv4Address(1, 2, 3, 4)).name == "tsmp_kernel_path_a_b_c")
    }

    @Test("the IPv4-only table is the text it always was (a state file records it)")
    func ipv4TextUnchanged() {
        #expect(table.ruleset == """
        table ip tsmp_kernel_path_tsmp0 {
            set to_server { type ipv4_addr . inet_service . ipv4_addr . inet_service; counter; }
            map to_server_port { type ipv4_addr . inet_service . ipv4_addr . inet_service : inet_service; }
            set to_device { type ipv4_addr . inet_service . inet_service; counter; }
            map to_device_addr { type ipv4_addr . inet_service . inet_service : ipv4_addr; }
            map to_device_port { type ipv4_addr . inet_service . inet_service : inet_service; }
            chain prerouting {
                type filter hook prerouting priority raw; policy accept;
                iifname "tsmp0" return
                tcp flags & (fin | syn | rst) != 0 return
                ip saddr . tcp sport . ip daddr . tcp dport @to_server meta mark set meta mark | 0x74000000 return
                ip daddr 10.2.0.1 ip saddr . tcp sport . tcp dport @to_device ip daddr set ip saddr . tcp sport . tcp dport map @to_device_addr tcp dport set ip saddr . tcp sport . tcp dport map @to_device_port meta mark set meta mark | 0x74000000
            }
            chain postrouting {
                type filter hook postrouting priority srcnat; policy accept;
                meta mark & 0x74000000 == 0x74000000 oifname "veth-up" tcp sport set ip saddr . tcp sport . ip daddr . tcp dport map @to_server_port ip saddr set 10.2.0.1
            }
        }

        """)
    }

    @Test func cleanupFindsOnlyKernelPathTables() {
        let listing = "table ip filter\ntable ip tsmp_kernel_path_tsmp0\ntable inet tsmp_kernel_path_x\ntable ip tsmp_kernel_path_tsmpe1x2\ntable ip6 tsmp_kernel_path_y\n"
        #expect(KernelPathTable.tables(inListing: listing).map { "\($0.family) \($0.name)" }
                == ["ip tsmp_kernel_path_tsmp0", "ip tsmp_kernel_path_tsmpe1x2", "inet tsmp_kernel_path_x"])
    }

    @Test("with an IPv6 NAT address: one table inet, the IPv4 rules and sets as before and the same for IPv6")
    func dualStackTable() throws {
        let dual = KernelPathTable(tunName: "tsmp0", uplink: "veth-up", nat: IPv4Address(10, 2, 0, 1),
                                   nat6: IPv6Address("fd00:2::1"))
        let text = dual.ruleset
        #expect(dual.family == "inet" && table.family == "ip" && table.ruleset.hasPrefix("table ip tsmp_kernel_path_tsmp0 {"))
        #expect(text.hasPrefix("table inet tsmp_kernel_path_tsmp0 {"))
        #expect(text.contains("set to_server6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; counter; }"))
        #expect(text.contains("ip6 daddr fd00:2::1 ip6 saddr . tcp sport . tcp dport @to_device6 ip6 daddr set"))
        #expect(text.contains("meta nfproto ipv6 tcp sport set ip6 saddr . tcp sport . ip6 daddr . tcp dport map @to_server_port6 ip6 saddr set fd00:2::1"))
        #expect(text.contains("meta nfproto ipv4 tcp sport set ip saddr . tcp sport . ip daddr . tcp dport map @to_server_port ip saddr set 10.2.0.1"))
        let v6 = KernelPathFlow(id: FlowID(3), device: IPEndpoint("[fd00:1::2]:40000")!, server: IPEndpoint("[fd00:2::2]:80")!,
                                nat: IPEndpoint("[fd00:2::1]:61003")!)
        let add = dual.elementCommands("add", flows + [v6])
        #expect(add.contains("add element inet tsmp_kernel_path_tsmp0 to_server { 10.1.0.2 . 40000 . 10.2.0.2 . 80, 10.1.0.3 . 40001 . 10.2.0.2 . 80 }"))
        #expect(add.contains("add element inet tsmp_kernel_path_tsmp0 to_server6 { fd00:1::2 . 40000 . fd00:2::2 . 80 }"))
        #expect(add.contains("add element inet tsmp_kernel_path_tsmp0 to_device_addr6 { fd00:2::2 . 80 . 61003 : fd00:1::2 }"))
        // An IPv4-only table takes no IPv6 flow.
        #expect(!table.elementCommands("add", [v6]).contains("6 {") && table.elementCommands("add", [v6]).isEmpty)
        #expect(dual.listSetCommand(deviceSide: false, family: .ipv6) == "list set inet tsmp_kernel_path_tsmp0 to_device6")
        #expect(GatewayChange.nftFamily(of: text) == "inet" && GatewayChange.nftFamily(of: table.ruleset) == "ip")
    }

    @Test func elementsAreAddedAndDeletedInOneTransaction() {
        let add = table.elementCommands("add", flows)
        #expect(add.contains("add element ip tsmp_kernel_path_tsmp0 to_server { 10.1.0.2 . 40000 . 10.2.0.2 . 80, 10.1.0.3 . 40001 . 10.2.0.2 . 80 }"))
        #expect(add.contains("to_server_port { 10.1.0.2 . 40000 . 10.2.0.2 . 80 : 61001, 10.1.0.3 . 40001 . 10.2.0.2 . 80 : 61002 }"))
        #expect(add.contains("to_device_addr { 10.2.0.2 . 80 . 61001 : 10.1.0.2, 10.2.0.2 . 80 . 61002 : 10.1.0.3 }"))
        #expect(add.contains("to_device_port { 10.2.0.2 . 80 . 61001 : 40000, 10.2.0.2 . 80 . 61002 : 40001 }"))
        let delete = table.elementCommands("delete", [flows[0]])
        #expect(delete.contains("delete element ip tsmp_kernel_path_tsmp0 to_device_port { 10.2.0.2 . 80 . 61001 }"))
        #expect(!delete.contains(":"))
        #expect(table.elementCommands("add", []).isEmpty)
    }

    @Test func countersAreReadFromNftJSONAndBadElementsSkipped() {
        let json = """
        {"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "ip", "name": "to_server", "elem": [
          {"elem": {"val": {"concat": ["10.1.0.2", 40000, "10.2.0.2", 80]}, "counter": {"packets": 12, "bytes": 34000}}},
          {"elem": {"val": {"concat": ["10.1.0.3", 40001, "10.2.0.2", 80]}}},
          {"elem": {"val": "junk"}}]}}]}
        """
        let counters = KernelPathTable.counters(fromJSON: json)
        #expect(counters.count == 1)
        #expect(counters[["10.1.0.2", "40000", "10.2.0.2", "80"]]?.packets == 12)
        #expect(counters[["10.1.0.2", "40000", "10.2.0.2", "80"]]?.bytes == 34000)
        #expect(KernelPathTable.counters(fromJSON: "not json").isEmpty)
    }
}
