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
public struct KernelPathTable: Sendable, Equatable, Codable {
    /// The mark bits on the packets the kernel forwards, both ways.
    public static let mark: UInt32 = 0x7400_0000

    public let name: String
    public let tunName: String
    public let uplink: String
    public let nat: IPv4Address

    public init(tunName: String, uplink: String, nat: IPv4Address) {
        self.tunName = tunName
        self.uplink = uplink
        self.nat = nat
        self.name = Self.namePrefix + String(tunName.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    static let namePrefix = "tsmp_kernel_path_"

    /// The kernel path tables in `nft list tables` output ("table ip NAME" lines).
    public static func tableNames(inListing listing: String) -> [String] {
        NftablesListing.tableNames(listing, family: "ip", prefix: namePrefix)
    }

    /// The whole table, for `nft -f` (one transaction).
    public var ruleset: String {
        let mark = "0x" + String(Self.mark, radix: 16)
        let fourTuple = "ipv4_addr . inet_service . ipv4_addr . inet_service"
        let serverKey = "ipv4_addr . inet_service . inet_service"
        return """
        table ip \(name) {
            set to_server { type \(fourTuple); counter; }
            map to_server_port { type \(fourTuple) : inet_service; }
            set to_device { type \(serverKey); counter; }
            map to_device_addr { type \(serverKey) : ipv4_addr; }
            map to_device_port { type \(serverKey) : inet_service; }
            chain prerouting {
                type filter hook prerouting priority raw; policy accept;
                iifname "\(tunName)" return
                tcp flags & (fin | syn | rst) != 0 return
                ip saddr . tcp sport . ip daddr . tcp dport @to_server meta mark set meta mark | \(mark) return
                ip daddr \(nat) ip saddr . tcp sport . tcp dport @to_device ip daddr set ip saddr . tcp sport . tcp dport map @to_device_addr tcp dport set ip saddr . tcp sport . tcp dport map @to_device_port meta mark set meta mark | \(mark)
            }
            chain postrouting {
                type filter hook postrouting priority srcnat; policy accept;
                meta mark & \(mark) == \(mark) oifname "\(uplink)" tcp sport set ip saddr . tcp sport . ip daddr . tcp dport map @to_server_port ip saddr set \(nat)
            }
        }

        """
    }

    /// One flow's entries in the sets and maps: its device and server endpoints and the NAT
    /// port the server sees (the engine's `KernelPathFlow` as the table needs it).
    public struct Element: Hashable, Sendable {
        public var device: IPv4Endpoint
        public var server: IPv4Endpoint
        public var natPort: UInt16
        public init(device: IPv4Endpoint, server: IPv4Endpoint, natPort: UInt16) {
            self.device = device; self.server = server; self.natPort = natPort
        }
    }

    /// Adds (`add`) or deletes (`delete`) the flows' elements, in one transaction.
    public func elementCommands(_ verb: String, elements flows: [Element]) -> String {
        guard !flows.isEmpty else { return "" }
        func join(_ parts: [String]) -> String { parts.joined(separator: ", ") }
        let toServer = flows.map { "\($0.device.address) . \($0.device.port) . \($0.server.address) . \($0.server.port)" }
        let toDevice = flows.map { "\($0.server.address) . \($0.server.port) . \($0.natPort)" }
        let deleting = verb == "delete"
        return [
            "\(verb) element ip \(name) to_server { \(join(toServer)) }",
            "\(verb) element ip \(name) to_server_port { \(join(deleting ? toServer : zip(toServer, flows).map { "\($0) : \($1.natPort)" })) }",
            "\(verb) element ip \(name) to_device { \(join(toDevice)) }",
            "\(verb) element ip \(name) to_device_addr { \(join(deleting ? toDevice : zip(toDevice, flows).map { "\($0) : \($1.device.address)" })) }",
            "\(verb) element ip \(name) to_device_port { \(join(deleting ? toDevice : zip(toDevice, flows).map { "\($0) : \($1.device.port)" })) }",
        ].joined(separator: "\n") + "\n"
    }

    /// Deletes elements by key alone, whatever flow they were installed for: `toServer` keys
    /// (device address, port, server address, port) from `to_server` and `to_server_port`,
    /// `toDevice` keys (server address, port, NAT port) from the three server-side sets.
    public func keyDeletionCommands(toServer: [[String]], toDevice: [[String]]) -> String {
        func join(_ keys: [[String]]) -> String { keys.map { $0.joined(separator: " . ") }.joined(separator: ", ") }
        var lines: [String] = []
        if !toServer.isEmpty {
            for set in ["to_server", "to_server_port"] { lines.append("delete element ip \(name) \(set) { \(join(toServer)) }") }
        }
        if !toDevice.isEmpty {
            for set in ["to_device", "to_device_addr", "to_device_port"] { lines.append("delete element ip \(name) \(set) { \(join(toDevice)) }") }
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
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
