import Testing
import Wire
@testable import GatewayHost

/// Fragment reassembly's nftables table and its place in the plan, without a kernel (the e2e
/// fragment cases install it and count what it sees).
@Suite struct ReassemblyTableTests {
    @Test func theTableCountsPiecesBeforeReassemblyAndTurnsConntrackOn() {
        let table = ReassemblyTable(tunName: "tsmp0")
        #expect(table.name == "tsmp_reassembly_tsmp0")
        #expect(ReassemblyTable(tunName: "a-b.c").name == "tsmp_reassembly_a_b_c")
        let text = table.ruleset
        // Before nf_defrag_ipv4 (-400), which a conntrack expression turns on in the namespace.
        #expect(text.contains("type filter hook prerouting priority -450;"))
        #expect(text.contains("ip frag-off & 0x3fff != 0 counter"))
        #expect(text.contains("type filter hook prerouting priority raw;"))
        #expect(text.contains("ct state untracked counter"))
    }

    @Test func cleanupFindsOnlyReassemblyTables() {
        let listing = "table ip filter\ntable ip tsmp_reassembly_tsmp0\ntable inet tsmp_reassembly_x\ntable ip tsmp_kernel_path_tsmp0\n"
        #expect(ReassemblyTable.tableNames(inListing: listing) == ["tsmp_reassembly_tsmp0"])
        #expect(KernelPathTable.tables(inListing: listing).map(\.name) == ["tsmp_kernel_path_tsmp0"])
    }

    @Test func thePlanRaisesTheTunMTUAndAddsTheTableRecordedForUndo() {
        var plan = GatewayPlan(deviceInterfaces: ["a"], uplinkInterface: "up", nat: IPv4Address(10, 2, 0, 1),
                               natPorts: PortRange(61000, 61999), interceptPorts: [PortRange(80, 80)],
                               tunMTU: ReassemblyTable.tunMTU, reassembly: ReassemblyTable(tunName: "tsmp0"))
        var facts = GatewayFacts()
        facts.tunMTU = 1500
        let changes = plan.changes(given: facts)
        #expect(changes.contains(.linkMTU(link: "tsmp0", previous: 1500, mtu: 65_535)))
        #expect(changes.contains(.nftTable(name: "tsmp_reassembly_tsmp0", ruleset: ReassemblyTable(tunName: "tsmp0").ruleset)))
        #expect(throws: Never.self) { try plan.validate() }
        plan.reassembly = nil
        plan.tunMTU = nil
        #expect(!plan.changes(given: facts).contains { if case .nftTable = $0 { true } else { false } })
    }
}
