import Foundation
import Wire

/// The nftables table through which the kernel forwards flows the engine handed over (the
/// kernel fast path, DESIGN §2): a stateless rewrite of one connection's addresses and ports,
/// the same rewrite the engine does for a plain flow, with no conntrack.
///
/// - Device -> server, at prerouting (raw priority, before routing): a flow in `to_server`
///   gets `mark` set, so the transparent policy rules (`fwmark 0/mark`) let it pass to normal
///   forwarding; at postrouting its source becomes the NAT address and port (`to_server_port`).
/// - Server -> NAT address, at prerouting: a flow in `to_device` gets its destination
///   rewritten to the device (`to_device_addr`, `to_device_port`), then routing forwards it.
///   It gets `mark` too, for the uplink's reverse-path check (`src_valid_mark`: see
///   `GatewayPlan.uplinkSrcValidMarkKey`), which would otherwise find the proxy's table.
/// - SYN, FIN and RST segments are never rewritten here: they reach the engine through the
///   TUN, which sees a flow's start and end. Packets the proxy writes into the TUN are left alone.
///
/// Checksums are updated by nftables (incrementally, partial checksums and super-segments
/// included). Sets count packets and bytes per flow (the kernel's counters, headers included).
///
/// With an IPv6 NAT address the table is `table inet` and holds the same sets and rules for
/// IPv6 flows beside the IPv4 ones (`to_server6`..., `ip6` selectors); without one it is the
/// `table ip` it always was (a state file from before IPv6 names that one).
public struct KernelPathTable: Sendable, Equatable, Codable {
    /// The mark bits on the packets the kernel forwards, both ways.
    public static let mark: UInt32 = 0x7400_0000

    public let name: String
    public let tunName: String
    public let uplink: String
    public let nat: IPv4Address
    /// The IPv6 NAT address; nil: IPv4 flows only (absent from state files before IPv6).
    public let nat6: IPv6Address?

    public init(tunName: String, uplink: String, nat: IPv4Address, nat6: IPv6Address? = nil) {
        self.tunName = tunName
        self.uplink = uplink
        self.nat = nat
        self.nat6 = nat6
        self.name = Self.namePrefix + String(tunName.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    static let namePrefix = "tsmp_kernel_path_"

    /// The table's nftables family: `ip`, or `inet` with IPv6.
    public var family: String { nat6 == nil ? "ip" : "inet" }

    /// The kernel path tables in `nft list tables` output ("table ip NAME" and "table inet
    /// NAME" lines), each with its family.
    public static func tables(inListing listing: String) -> [(family: String, name: String)] {
        ["ip", "inet"].flatMap { family in
            NftablesListing.tableNames(listing, family: family, prefix: namePrefix).map { (family, $0) }
        }
    }

    /// The set names of `family`'s flows: `to_server` and the rest for IPv4, `to_server6`... for IPv6.
    static func suffix(_ family: IPFamily) -> String { family == .ipv4 ? "" : "6" }

    /// The whole table, for `nft -f` (one transaction): `table ip` with IPv4's sets and rules,
    /// or `table inet` with IPv6's beside them (its postrouting rules then name their family).
    public var ruleset: String {
        let families = self.families
        let parts = families.map { pieces($0, inet: nat6 != nil) }
        func indented(_ lines: [String], _ depth: Int) -> String {
            lines.map { String(repeating: "    ", count: depth) + $0 }.joined(separator: "\n")
        }
        return """
        table \(family) \(name) {
        \(indented(parts.flatMap(\.sets), 1))
            chain prerouting {
                type filter hook prerouting priority raw; policy accept;
                iifname "\(tunName)" return
                tcp flags & (fin | syn | rst) != 0 return
        \(indented(parts.flatMap(\.prerouting), 2))
            }
            chain postrouting {
                type filter hook postrouting priority srcnat; policy accept;
        \(indented(parts.map(\.postrouting), 2))
            }
        }

        """
    }

    /// One family's sets and rules (the set names of IPv6 end in 6).
    private func pieces(_ family: IPFamily, inet: Bool) -> (sets: [String], prerouting: [String], postrouting: String) {
        let mark = "0x" + String(Self.mark, radix: 16)
        let s = Self.suffix(family)
        let (ip, addr, nfproto) = family == .ipv4 ? ("ip", "ipv4_addr", "ipv4") : ("ip6", "ipv6_addr", "ipv6")
        let natAddress = family == .ipv4 ? nat.description : nat6?.description ?? ""
        let fourTuple = "\(addr) . inet_service . \(addr) . inet_service"
        let serverKey = "\(addr) . inet_service . inet_service"
        let sets = [
            "set to_server\(s) { type \(fourTuple); counter; }",
            "map to_server_port\(s) { type \(fourTuple) : inet_service; }",
            "set to_device\(s) { type \(serverKey); counter; }",
            "map to_device_addr\(s) { type \(serverKey) : \(addr); }",
            "map to_device_port\(s) { type \(serverKey) : inet_service; }",
        ]
        let prerouting = [
            "\(ip) saddr . tcp sport . \(ip) daddr . tcp dport @to_server\(s) meta mark set meta mark | \(mark) return",
            "\(ip) daddr \(natAddress) \(ip) saddr . tcp sport . tcp dport @to_device\(s) \(ip) daddr set \(ip) saddr . tcp sport . tcp dport map @to_device_addr\(s) tcp dport set \(ip) saddr . tcp sport . tcp dport map @to_device_port\(s) meta mark set meta mark | \(mark)",
        ]
        let postrouting = "meta mark & \(mark) == \(mark) oifname \"\(uplink)\" \(inet ? "meta nfproto \(nfproto) " : "")tcp sport set \(ip) saddr . tcp sport . \(ip) daddr . tcp dport map @to_server_port\(s) \(ip) saddr set \(natAddress)"
        return (sets, prerouting, postrouting)
    }

    /// One flow's entries in the sets and maps: its device and server endpoints (of one
    /// family) and the NAT port the server sees (the engine's `KernelPathFlow` as the table
    /// needs it).
    public struct Element: Hashable, Sendable {
        public var device: IPEndpoint
        public var server: IPEndpoint
        public var natPort: UInt16
        public init(device: IPEndpoint, server: IPEndpoint, natPort: UInt16) {
            self.device = device; self.server = server; self.natPort = natPort
        }
        public init(device: IPv4Endpoint, server: IPv4Endpoint, natPort: UInt16) {
            self.init(device: IPEndpoint(device), server: IPEndpoint(server), natPort: natPort)
        }
    }

    /// Adds (`add`) or deletes (`delete`) the flows' elements, in one transaction (an IPv6
    /// flow's in the IPv6 sets; none when the table has no IPv6 sets).
    public func elementCommands(_ verb: String, elements flows: [Element]) -> String {
        func join(_ parts: [String]) -> String { parts.joined(separator: ", ") }
        var lines: [String] = []
        for family in IPFamily.allCases {
            let these = flows.filter { $0.device.family == family && $0.server.family == family }
            guard !these.isEmpty, family == .ipv4 || nat6 != nil else { continue }
            let s = Self.suffix(family)
            let toServer = these.map { "\($0.device.address) . \($0.device.port) . \($0.server.address) . \($0.server.port)" }
            let toDevice = these.map { "\($0.server.address) . \($0.server.port) . \($0.natPort)" }
            let deleting = verb == "delete"
            lines += [
                "\(verb) element \(self.family) \(name) to_server\(s) { \(join(toServer)) }",
                "\(verb) element \(self.family) \(name) to_server_port\(s) { \(join(deleting ? toServer : zip(toServer, these).map { "\($0) : \($1.natPort)" })) }",
                "\(verb) element \(self.family) \(name) to_device\(s) { \(join(toDevice)) }",
                "\(verb) element \(self.family) \(name) to_device_addr\(s) { \(join(deleting ? toDevice : zip(toDevice, these).map { "\($0) : \($1.device.address)" })) }",
                "\(verb) element \(self.family) \(name) to_device_port\(s) { \(join(deleting ? toDevice : zip(toDevice, these).map { "\($0) : \($1.device.port)" })) }",
            ]
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// Deletes elements by key alone, whatever flow they were installed for: `toServer` keys
    /// (device address, port, server address, port) from `to_server` and `to_server_port`,
    /// `toDevice` keys (server address, port, NAT port) from the three server-side sets; of
    /// `family`'s sets.
    public func keyDeletionCommands(toServer: [[String]], toDevice: [[String]], family: IPFamily = .ipv4) -> String {
        func join(_ keys: [[String]]) -> String { keys.map { $0.joined(separator: " . ") }.joined(separator: ", ") }
        let s = Self.suffix(family)
        var lines: [String] = []
        if !toServer.isEmpty {
            for set in ["to_server", "to_server_port"] { lines.append("delete element \(self.family) \(name) \(set)\(s) { \(join(toServer)) }") }
        }
        if !toDevice.isEmpty {
            for set in ["to_device", "to_device_addr", "to_device_port"] {
                lines.append("delete element \(self.family) \(name) \(set)\(s) { \(join(toDevice)) }")
            }
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// The families whose flows the table holds.
    public var families: [IPFamily] { nat6 == nil ? [.ipv4] : [.ipv4, .ipv6] }

    /// `nft -j list set` of `family`'s device-side (`to_server`) or server-side set.
    public func listSetCommand(deviceSide: Bool, family: IPFamily) -> String {
        "list set \(self.family) \(name) \(deviceSide ? "to_server" : "to_device")\(Self.suffix(family))"
    }

    /// The per-element counters of `nft -j list set` output: key values -> (packets, bytes).
    /// Elements whose key or counter does not parse are skipped.
    public static func counters(fromJSON json: String) -> [[String]: (packets: UInt64, bytes: UInt64)] {
        guard let data = json.data(using: .utf8),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let items = root["nftables"] as? [[String: Any]] else { return [:] }
        var out: [[String]: (packets: UInt64, bytes: UInt64)] = [:]
        for item in items {
            guard let set = item["set"] as? [String: Any], let elems = set["elem"] as? [[String: Any]] else { continue }
            for wrapper in elems {
                guard let elem = wrapper["elem"] as? [String: Any],
                      let val = elem["val"] as? [String: Any], let concat = val["concat"] as? [Any],
                      let counter = elem["counter"] as? [String: Any],
                      let packets = (counter["packets"] as? NSNumber)?.uint64Value,
                      let bytes = (counter["bytes"] as? NSNumber)?.uint64Value else { continue }
                out[concat.map { "\($0)" }] = (packets, bytes)
            }
        }
        return out
    }
}
