import Testing
import Wire
@testable import GatewayHost

/// The media relay's redirect table (`--intercept rtsp/PORT`, `--media-service`), without a
/// kernel (the e2e media cases install it, and `tsmp proxy cleanup` removes it there).
@Suite struct MediaInterceptTableTests {
    @Test func transparentRedirectsRTSPAndTheDevicePairFromTheDeviceInterfaces() {
        let table = MediaInterceptTable(tunName: "tsmp0", deviceInterfaces: ["gw-laptop", "gw-phone"],
                                        rtspPorts: [PortRange(554, 554), PortRange(8554, 8555)], listenPort: 46000, devicePort: 46000)
        #expect(table.name == "tsmp_media_tsmp0" && table.family == "ip")
        let text = table.ruleset
        #expect(text.hasPrefix("table ip tsmp_media_tsmp0 {"))
        #expect(text.contains("type nat hook prerouting priority dstnat; policy accept;"))
        #expect(text.contains(#"iifname { "gw-laptop", "gw-phone" } tcp dport { 554, 8554-8555 } counter redirect to :46000"#))
        #expect(text.contains(#"iifname { "gw-laptop", "gw-phone" } udp dport { 46000, 46001 } counter redirect"#))
        #expect(!text.contains("daddr"))
    }

    @Test func serviceAddressesOfBothFamiliesMakeAnInetTable() {
        let table = MediaInterceptTable(tunName: "tsmp0", deviceInterfaces: ["eth1"], rtspPorts: [], listenPort: 46000, devicePort: 46000,
                                        services: [IPEndpoint("10.9.9.9:554")!, IPEndpoint("[fd00:9::9]:8554")!], ipv6: true)
        let text = table.ruleset
        #expect(text.hasPrefix("table inet tsmp_media_tsmp0 {"))
        #expect(text.contains("ip daddr 10.9.9.9 tcp dport 554 counter redirect to :46000"))
        #expect(text.contains("ip6 daddr fd00:9::9 tcp dport 8554 counter redirect to :46000"))
        #expect(text.contains("ip daddr { 10.9.9.9 } udp dport { 46000, 46001 } counter redirect"))
        #expect(text.contains("ip6 daddr { fd00:9::9 } udp dport { 46000, 46001 } counter redirect"))
        // No interface rules without rtsp/PORT intercepts.
        #expect(!text.contains("iifname"))
    }

    @Test func cleanupFindsMediaTablesOfEitherFamily() {
        let listing = "table ip filter\ntable ip tsmp_media_a\ntable inet tsmp_media_b\ntable ip tsmp_reassembly_a\n"
        #expect(MediaInterceptTable.tables(inListing: listing).map { "\($0.family) \($0.name)" } == ["ip tsmp_media_a", "inet tsmp_media_b"])
    }
}
