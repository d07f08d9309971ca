import Wire

/// The nftables table that brings RTSP sessions of the devices to the proxy's media relay
/// (`--intercept rtsp/PORT`, SMP draft §4.3): at prerouting (dstnat), on the device interfaces,
///
/// - TCP to the RTSP ports is redirected to the relay's listening port; the relay reads where
///   it was going (SO_ORIGINAL_DST) and connects there itself;
/// - UDP to the relay's device-side pair (the `server_port` its SETUP answers name) is
///   redirected to the relay, port kept: a player's RTCP and its first "punch" packets. RTP the
///   relay then sends to the player leaves as the reply of that conntrack entry, from the
///   server's address.
///
/// Redirection is conntrack's NAT: the table turns conntrack on in the namespace, as the
/// reassembly table does. Nothing else passes through it.
public struct MediaInterceptTable: Sendable, Equatable, Codable {
    public let name: String
    public let deviceInterfaces: [String]
    public let rtspPorts: [PortRange]
    public let listenPort: UInt16
    /// The device-side pair: RTP `devicePort`, RTCP the next.
    public let devicePort: UInt16
    /// Service mode: the published RTSP addresses, redirected from any interface.
    public let services: [IPEndpoint]
    /// IPv6 too (an IPv6 --nat): the table is `table inet`, its rules for both families.
    public let ipv6: Bool

    public init(tunName: String, deviceInterfaces: [String], rtspPorts: [PortRange], listenPort: UInt16, devicePort: UInt16,
                services: [IPEndpoint] = [], ipv6: Bool = false) {
        self.services = services
        self.ipv6 = ipv6
        name = Self.namePrefix + String(tunName.map { $0.isLetter || $0.isNumber ? $0 : "_" })
        self.deviceInterfaces = deviceInterfaces
        self.rtspPorts = rtspPorts
        self.listenPort = listenPort
        self.devicePort = devicePort
    }

    static let namePrefix = "tsmp_media_"

    /// The table's nftables family.
    public var family: String { ipv6 ? "inet" : "ip" }

    /// The media tables in `nft list tables` output, each with its family.
    public static func tables(inListing listing: String) -> [(family: String, name: String)] {
        ["ip", "inet"].flatMap { family in NftablesListing.tableNames(listing, family: family, prefix: namePrefix).map { (family, $0) } }
    }

    /// The whole table, for `nft -f` (one transaction).
    public var ruleset: String {
        let interfaces = deviceInterfaces.map { "\"\($0)\"" }.joined(separator: ", ")
        let ports = rtspPorts.map { $0.lower == $0.upper ? "\($0.lower)" : "\($0.lower)-\($0.upper)" }.joined(separator: ", ")
        var rules: [String] = []
        if !rtspPorts.isEmpty && !deviceInterfaces.isEmpty {
            rules.append("iifname { \(interfaces) } tcp dport { \(ports) } counter redirect to :\(listenPort)")
            rules.append("iifname { \(interfaces) } udp dport { \(devicePort), \(devicePort &+ 1) } counter redirect")
        }
        for vip in services {
            let ip = vip.address.family == .ipv4 ? "ip" : "ip6"
            rules.append("\(ip) daddr \(vip.address) tcp dport \(vip.port) counter redirect to :\(listenPort)")
        }
        for (ip, family) in [("ip", IPFamily.ipv4), ("ip6", .ipv6)] {
            let vips = Set(services.filter { $0.address.family == family }.map(\.address.description)).sorted()
            if !vips.isEmpty {
                rules.append("\(ip) daddr { \(vips.joined(separator: ", ")) } udp dport { \(devicePort), \(devicePort &+ 1) } counter redirect")
            }
        }
        return """
        table \(family) \(name) {
            chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
        \(rules.map { "        " + $0 }.joined(separator: "\n"))
            }
        }

        """
    }
}
