import CShims
import Wire

/// The "proto" tags of rules and routes (`ip rule ... proto N`): who installed them.
public enum NetlinkProtocolTag {
    /// tsmp's own tag, 0x74 ("t"). Every rule and route tsmp installs carries it, so
    /// `tsmp proxy cleanup` finds leftovers even without a state file.
    public static let tsmp: UInt8 = 0x74
    /// RTPROT_KERNEL: the kernel's default rules (`0: from all lookup local`) carry it.
    public static let kernel = UInt8(TSMP_NL_RTPROT_KERNEL)
}

/// Well-known routing table ids (rtnetlink.h).
public enum NetlinkTable {
    public static let main = UInt32(TSMP_NL_RT_TABLE_MAIN)
    public static let local = UInt32(TSMP_NL_RT_TABLE_LOCAL)
    /// Ids a plan may not use: unspecified (0), compat (252), default (253), main, local.
    public static let reserved: Set<UInt32> = [0, 252, 253, main, local]
}

/// An IPv4 prefix, "10.1.0.0/24", or an IPv6 one, "fd00:2::/64". Host bits are kept as given
/// (an interface address keeps its own address with the subnet's length).
public struct NetlinkPrefix: Hashable, Sendable, Codable, CustomStringConvertible {
    public var address: IPAddress
    public var length: UInt8

    public init(_ address: IPv4Address, length: UInt8) {
        precondition(length <= 32, "IPv4 prefix length \(length) > 32")
        self.address = .v4(address)
        self.length = length
    }
    public init(_ address: IPv6Address, length: UInt8) {
        precondition(length <= 128, "IPv6 prefix length \(length) > 128")
        self.address = .v6(address)
        self.length = length
    }

    /// The /32 holding one address.
    public static func host(_ address: IPv4Address) -> NetlinkPrefix { NetlinkPrefix(address, length: 32) }
    /// The /32 or /128 holding one address.
    public static func host(_ address: IPAddress) -> NetlinkPrefix {
        switch address {
        case .v4(let a): NetlinkPrefix(a, length: 32)
        case .v6(let a): NetlinkPrefix(a, length: 128)
        }
    }

    /// 0.0.0.0/0.
    public static let any = NetlinkPrefix(IPv4Address(0), length: 0)
    /// ::/0.
    public static let any6 = NetlinkPrefix(IPv6Address(high: 0, low: 0), length: 0)
    /// The default prefix of `family`.
    public static func any(_ family: IPFamily) -> NetlinkPrefix { family == .ipv4 ? any : any6 }

    public var family: IPFamily { address.family }

    /// Parses "A.B.C.D/LEN", "A.B.C.D" (a /32), "IPV6/LEN" or "IPV6" (a /128); nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        let most: UInt8 = address.family == .ipv4 ? 32 : 128
        var length = most
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let l = UInt8(parts[1]), l <= most else { return nil }
            length = l
        }
        self.address = address
        self.length = length
    }

    /// The network mask in host order (0 for /0); IPv4 only.
    public var mask: UInt32 { length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(min(length, 32))) }

    /// Whether `other` is inside this prefix (false across families).
    public func contains(_ other: IPv4Address) -> Bool {
        guard case .v4(let a) = address else { return false }
        return other.value & mask == a.value & mask
    }

    public var description: String { "\(address)/\(length)" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let prefix = NetlinkPrefix(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "not an IPv4 or IPv6 prefix: \(text)"))
        }
        self = prefix
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An IPv4 policy rule whose action is "lookup TABLE" (`ip rule`). Optional selectors are
/// nil when the rule does not use them.
public struct NetlinkRule: Hashable, Sendable, Codable, CustomStringConvertible {
    /// "pref": lower runs first.
    public var priority: UInt32
    /// "lookup".
    public var table: UInt32
    /// "iif": only packets that arrived on this interface.
    public var inputInterface: String?
    /// "to".
    public var destination: NetlinkPrefix?
    /// "ipproto": 6 for TCP.
    public var ipProtocol: UInt8?
    /// "dport LO-HI".
    public var destinationPorts: ClosedRange<UInt16>?
    /// "fwmark 0/MASK": only packets carrying none of these mark bits (packets the kernel
    /// path marks go on past tsmp's rules); nil: any mark.
    public var markClear: UInt32?
    /// "proto": who installed the rule (FRA_PROTOCOL); 0 when unset.
    public var protocolTag: UInt8
    /// Set on listed rules that use selectors this type does not model (from, fwmark, oif,
    /// sport, not, ...). Never sent to the kernel.
    public var hasOtherSelectors: Bool
    /// `.ipv6` for an IPv6 rule (`ip -6 rule`); nil for IPv4 (as in state files written before
    /// IPv6 rules existed).
    public var ipv6Family: IPFamily?

    public static let tcp: UInt8 = 6

    public init(priority: UInt32, table: UInt32, inputInterface: String? = nil,
                destination: NetlinkPrefix? = nil, ipProtocol: UInt8? = nil,
                destinationPorts: ClosedRange<UInt16>? = nil, markClear: UInt32? = nil, protocolTag: UInt8 = 0,
                hasOtherSelectors: Bool = false, family: IPFamily = .ipv4) {
        self.ipv6Family = (destination?.family ?? family) == .ipv6 ? .ipv6 : nil
        self.markClear = markClear
        self.priority = priority
        self.table = table
        self.inputInterface = inputInterface
        self.destination = destination
        self.ipProtocol = ipProtocol
        self.destinationPorts = destinationPorts
        self.protocolTag = protocolTag
        self.hasOtherSelectors = hasOtherSelectors
    }

    /// The rule's family.
    public var family: IPFamily { ipv6Family ?? .ipv4 }

    /// The kernel's `pref 0 lookup local` rule.
    public static let kernelLocal = NetlinkRule(priority: 0, table: NetlinkTable.local,
                                                protocolTag: NetlinkProtocolTag.kernel)
    /// Its IPv6 twin (`ip -6 rule`).
    public static let kernelLocal6 = NetlinkRule(priority: 0, table: NetlinkTable.local,
                                                 protocolTag: NetlinkProtocolTag.kernel, family: .ipv6)

    /// Whether this is a plain "lookup local" rule (no selectors).
    public var isPlainLocalLookup: Bool {
        table == NetlinkTable.local && inputInterface == nil && destination == nil && ipProtocol == nil
            && destinationPorts == nil && markClear == nil && !hasOtherSelectors
    }

    /// In `ip rule add` words: "pref 10100 iif veth-l ipproto tcp dport 80 lookup 7464 proto 0x74",
    /// after "-6" for an IPv6 rule.
    public var description: String {
        var words = family == .ipv6 ? ["-6", "pref \(priority)"] : ["pref \(priority)"]
        if let inputInterface { words.append("iif \(inputInterface)") }
        if let destination { words.append("to \(destination)") }
        if let ipProtocol { words.append("ipproto \(ipProtocol == Self.tcp ? "tcp" : String(ipProtocol))") }
        if let ports = destinationPorts {
            words.append(ports.count == 1 ? "dport \(ports.lowerBound)" : "dport \(ports.lowerBound)-\(ports.upperBound)")
        }
        if let markClear { words.append("fwmark 0/0x" + String(markClear, radix: 16)) }
        words.append("lookup \(Self.tableName(table))")
        if protocolTag != 0 { words.append("proto \(NetlinkRoute.protocolName(protocolTag))") }
        return words.joined(separator: " ")
    }

    static func tableName(_ table: UInt32) -> String {
        switch table {
        case NetlinkTable.local: "local"
        case NetlinkTable.main: "main"
        case 253: "default"
        default: String(table)
        }
    }
}

/// An IPv4 unicast route (`ip route`): through a device, a gateway, or both.
/// A route that does not forward (rtm_type; RFC-less, see rtnetlink(7)): packets that look it
/// up are dropped (`blackhole`) or refused with an ICMP error (`unreachable`).
public enum NetlinkRouteKind: UInt8, Hashable, Sendable, Codable {
    case blackhole = 6
    case unreachable = 7
}

public struct NetlinkRoute: Hashable, Sendable, Codable, CustomStringConvertible {
    /// nil: an ordinary (unicast) route. Absent from state files written before it existed.
    public var kind: NetlinkRouteKind?
    public var table: UInt32
    /// 0.0.0.0/0 is "default".
    public var destination: NetlinkPrefix
    /// "dev".
    public var device: String?
    /// "via".
    public var gateway: IPAddress?
    /// "proto": who installed the route; 0 when unset.
    public var protocolTag: UInt8
    /// "metric".
    public var metric: UInt32

    /// The route's family (its destination's).
    public var family: IPFamily { destination.family }

    public init(table: UInt32, destination: NetlinkPrefix = .any, device: String? = nil,
                gateway: IPAddress? = nil, protocolTag: UInt8 = 0, metric: UInt32 = 0, kind: NetlinkRouteKind? = nil) {
        self.kind = kind
        self.table = table
        self.destination = destination
        self.device = device
        self.gateway = gateway
        self.protocolTag = protocolTag
        self.metric = metric
    }

    /// In `ip route add` words: "default dev tsmp0 table 7464 proto 0x74".
    public var description: String {
        var words = family == .ipv6 ? ["-6"] : []
        words += kind.map { ["\($0)"] } ?? []
        words.append(destination.length == 0 ? "default" : destination.description)
        if let gateway { words.append("via \(gateway)") }
        if let device { words.append("dev \(device)") }
        words.append("table \(NetlinkRule.tableName(table))")
        if protocolTag != 0 { words.append("proto \(Self.protocolName(protocolTag))") }
        if metric != 0 { words.append("metric \(metric)") }
        return words.joined(separator: " ")
    }

    static func protocolName(_ tag: UInt8) -> String {
        switch tag {
        case 1: "redirect"
        case NetlinkProtocolTag.kernel: "kernel"
        case 3: "boot"
        case 4: "static"
        case NetlinkProtocolTag.tsmp: "0x74"
        default: String(tag)
        }
    }
}

/// A link (network interface) as netlink reports it.
public struct NetlinkLink: Hashable, Sendable {
    public var name: String
    public var index: Int32
    public var isUp: Bool
    public var mtu: UInt32
}
