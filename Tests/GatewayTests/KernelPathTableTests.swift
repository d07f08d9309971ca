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

    @Test func cleanupFindsOnlyKernelPathTables() {
        let listing = "table ip filter\ntable ip tsmp_kernel_path_tsmp0\ntable inet tsmp_kernel_path_x\ntable ip tsmp_kernel_path_tsmpe1x2\n"
        #expect(KernelPathTable.tableNames(inListing: listing) == ["tsmp_kernel_path_tsmp0", "tsmp_kernel_path_tsmpe1x2"])
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
