#if canImport(Glibc)
import Glibc
#endif
import CShims
import PacketIO
import Wire

/// A NETLINK_ROUTE socket in the calling thread's network namespace, with one method per
/// kernel object tsmp installs (links, IPv4 addresses, routes, policy rules).
///
/// Every failure is a `SystemError` whose operation names the object in `ip` words, e.g.
/// "add rule pref 10100 iif veth-l ipproto tcp dport 80 lookup 7464 proto 0x74: File exists".
/// Not thread-safe: one session per thread (a thread that entered a namespace opens its own).
public final class NetlinkSession {
    private let socket: OpaquePointer

    public init() throws(SystemError) {
        var socket: OpaquePointer?
        try Self.check("open netlink route socket") { tsmp_nl_open(&socket) }
        guard let socket else { throw SystemError("open netlink route socket", errno: ENOMEM) }
        self.socket = socket
    }

    deinit { tsmp_nl_close(socket) }

    // MARK: Links

    /// The link called `name`; throws ENODEV when there is none.
    public func link(named name: String) throws(SystemError) -> NetlinkLink {
        var index: Int32 = 0, flags: UInt32 = 0, mtu: UInt32 = 0
        try Self.check("look up link \(name)") { tsmp_nl_link_get(socket, name, &index, &flags, &mtu) }
        return NetlinkLink(name: name, index: index, isUp: flags & UInt32(TSMP_NL_IFF_UP) != 0, mtu: mtu)
    }

    /// The link called `name`, or nil when there is none.
    public func linkIfPresent(named name: String) throws(SystemError) -> NetlinkLink? {
        do { return try link(named: name) } catch where error.errno == ENODEV { return nil }
    }

    public func setLink(_ name: String, up: Bool) throws(SystemError) {
        try Self.check("set link \(name) \(up ? "up" : "down")") { tsmp_nl_link_set_up(socket, name, up ? 1 : 0) }
    }

    public func setLinkTxQueueLength(_ name: String, _ length: UInt32) throws(SystemError) {
        try Self.check("set link \(name) txqueuelen \(length)") { tsmp_nl_link_set_txqlen(socket, name, length) }
    }

    public func setLinkMTU(_ name: String, _ mtu: UInt32) throws(SystemError) {
        try Self.check("set link \(name) mtu \(mtu)") { tsmp_nl_link_set_mtu(socket, name, mtu) }
    }

    // MARK: Addresses

    /// Adds `prefix` (the address with its subnet length) to `link`; EEXIST if it is there.
    public func addAddress(_ prefix: NetlinkPrefix, to link: String) throws(SystemError) {
        try Self.check("add address \(prefix) dev \(link)") {
            guard case .v4(let a) = prefix.address else { return -EAFNOSUPPORT }
            return tsmp_nl_addr_add(socket, link, a.value, prefix.length)
        }
    }

    /// Deletes `prefix` from `link`; EADDRNOTAVAIL if it is not there.
    public func deleteAddress(_ prefix: NetlinkPrefix, from link: String) throws(SystemError) {
        try Self.check("delete address \(prefix) dev \(link)") {
            guard case .v4(let a) = prefix.address else { return -EAFNOSUPPORT }
            return tsmp_nl_addr_delete(socket, link, a.value, prefix.length)
        }
    }

    /// Whether the gateway owns `address`: it is on one of its interfaces, or a `local` route
    /// covers it, so the kernel's `lookup local` rule would deliver packets for it locally.
    public func isLocalAddress(_ address: IPv4Address) throws(SystemError) -> Bool {
        try Self.check("check whether \(address) is a local address") {
            tsmp_nl_addr_is_local(socket, address.value)
        } == 1
    }
    /// The same for an address of either family.
    public func isLocalAddress(_ address: IPAddress) throws(SystemError) -> Bool {
        switch address {
        case .v4(let a): return try isLocalAddress(a)
        case .v6(let a):
            var bytes = Self.bytes(a)
            return try Self.check("check whether \(a) is a local address") {
                withUnsafeBytes(of: &bytes) { tsmp_nl_addr6_is_local(socket, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
            } == 1
        }
    }

    // MARK: Routes

    /// Adds `route`; EEXIST if an identical one is there.
    public func addRoute(_ route: NetlinkRoute) throws(SystemError) {
        var raw = Self.raw(route)
        try Self.check("add route \(route)") { tsmp_nl_route_add(socket, &raw) }
    }

    /// Deletes `route`; ESRCH if it is not there, ENODEV if its device is gone (and with it
    /// the route).
    public func deleteRoute(_ route: NetlinkRoute) throws(SystemError) {
        var raw = Self.raw(route)
        try Self.check("delete route \(route)") { tsmp_nl_route_delete(socket, &raw) }
    }

    /// Routes of `family` (nil: both) in `table` (nil: every table) with `protocolTag` (nil: any).
    public func routes(table: UInt32? = nil, protocolTag: UInt8? = nil, family: IPFamily? = nil) throws(SystemError) -> [NetlinkRoute] {
        var all: [NetlinkRoute] = []
        for f in family.map({ [$0] }) ?? IPFamily.allCases {
            let raws = try Self.list("list routes", initialCapacity: 64) { (buffer) -> Int32 in
                tsmp_nl_route_list(socket, Self.af(f), table ?? 0, protocolTag ?? 0, buffer.baseAddress, buffer.count)
            } as [tsmp_nl_route]
            all += raws.map { raw in
                let v6 = f == .ipv6
                let destination = v6 ? NetlinkPrefix(Self.address6(raw.dst6), length: raw.dst_len)
                                     : NetlinkPrefix(IPv4Address(raw.dst), length: raw.dst_len)
                let gateway: IPAddress? = v6 ? Self.address6(raw.gateway6).nonZero.map { .v6($0) }
                                             : raw.gateway == 0 ? nil : .v4(IPv4Address(raw.gateway))
                return NetlinkRoute(table: raw.table, destination: destination, device: Self.string(raw.oif_name),
                                    gateway: gateway, protocolTag: raw.protocol, metric: raw.priority,
                                    kind: NetlinkRouteKind(rawValue: raw.type))
            }
        }
        return all
    }

    // MARK: Rules

    /// Adds `rule`; EEXIST if an identical one is there.
    public func addRule(_ rule: NetlinkRule) throws(SystemError) {
        var raw = try Self.raw(rule, operation: "add rule \(rule)")
        try Self.check("add rule \(rule)") { tsmp_nl_rule_add(socket, &raw) }
    }

    /// Deletes the rule matching `rule`'s selectors; ENOENT if there is none.
    public func deleteRule(_ rule: NetlinkRule) throws(SystemError) {
        var raw = try Self.raw(rule, operation: "delete rule \(rule)")
        try Self.check("delete rule \(rule)") { tsmp_nl_rule_delete(socket, &raw) }
    }

    /// Every policy rule of `family` (nil: IPv4's, then IPv6's), each family in priority order.
    /// With both asked for, a kernel without IPv6 rules (booted with ipv6.disable=1, or without
    /// IPV6_MULTIPLE_TABLES: EAFNOSUPPORT) has IPv4's alone.
    public func rules(family: IPFamily? = nil) throws(SystemError) -> [NetlinkRule] {
        if let family { return try rules(of: family) }
        var all = try rules(of: .ipv4)
        do { all += try rules(of: .ipv6) } catch where error.errno == EAFNOSUPPORT {}
        return all
    }

    private func rules(of f: IPFamily) throws(SystemError) -> [NetlinkRule] {
        let raws = try Self.list("list rules", initialCapacity: 32) { (buffer) -> Int32 in
            tsmp_nl_rule_list(socket, Self.af(f), buffer.baseAddress, buffer.count)
        } as [tsmp_nl_rule]
        return raws.map { raw in
            NetlinkRule(priority: raw.priority, table: raw.table, inputInterface: Self.string(raw.iif),
                        destination: raw.has_dst != 0 || raw.dst_len != 0
                            ? (f == .ipv6 ? NetlinkPrefix(Self.address6(raw.dst6), length: raw.dst_len)
                                          : NetlinkPrefix(IPv4Address(raw.dst), length: raw.dst_len)) : nil,
                        ipProtocol: raw.ip_proto == 0 ? nil : raw.ip_proto,
                        destinationPorts: raw.dport_start == 0 && raw.dport_end == 0
                            ? nil : raw.dport_start...max(raw.dport_start, raw.dport_end),
                        markClear: raw.fwmask == 0 ? nil : raw.fwmask,
                        protocolTag: raw.protocol, hasOtherSelectors: raw.has_other != 0, family: f)
        }
    }

    // MARK: Glue

    /// Runs a shim call returning 0 (or a count) or -errno.
    @discardableResult
    private static func check(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(SystemError) -> Int32 {
        let result = body()
        if result < 0 { throw SystemError(operation(), errno: -result) }
        return result
    }

    /// Calls a listing shim with a buffer, growing it until everything fits.
    private static func list<Raw>(_ operation: String, initialCapacity: Int,
                                  _ body: (UnsafeMutableBufferPointer<Raw>) -> Int32) throws(SystemError) -> [Raw] {
        var capacity = initialCapacity
        while true {
            let buffer = UnsafeMutableBufferPointer<Raw>.allocate(capacity: capacity)
            defer { buffer.deallocate() }
            let count = Int(try check(operation) { body(buffer) })
            if count <= capacity { return Array(buffer[0..<count]) }
            capacity = count + 16   // the table grew between calls: ask again
        }
    }

    private static func af(_ family: IPFamily) -> UInt8 {
        UInt8(family == .ipv4 ? TSMP_NL_AF_INET : TSMP_NL_AF_INET6)
    }

    /// An IPv6 address's 16 bytes, network order, as the C structs hold them.
    private static func bytes(_ a: IPv6Address) -> (UInt64, UInt64) { (a.high.bigEndian, a.low.bigEndian) }

    private static func setAddress6<Tuple>(_ field: inout Tuple, _ a: IPv6Address) {
        var b = bytes(a)
        withUnsafeMutableBytes(of: &field) { out in withUnsafeBytes(of: &b) { out.copyMemory(from: $0) } }
    }

    private static func address6<Tuple>(_ field: Tuple) -> IPv6Address {
        withUnsafeBytes(of: field) { b in
            IPv6Address(high: UInt64(bigEndian: b.loadUnaligned(as: UInt64.self)),
                        low: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    private static func raw(_ route: NetlinkRoute) -> tsmp_nl_route {
        var raw = tsmp_nl_route()
        raw.table = route.table
        raw.family = af(route.family)
        switch route.destination.address {
        case .v4(let a): raw.dst = a.value
        case .v6(let a): setAddress6(&raw.dst6, a)
        }
        raw.dst_len = route.destination.length
        raw.protocol = route.protocolTag
        switch route.gateway {
        case .v4(let a)?: raw.gateway = a.value
        case .v6(let a)?: setAddress6(&raw.gateway6, a)
        case nil: break
        }
        raw.priority = route.metric
        raw.type = route.kind?.rawValue ?? 0
        if let device = route.device { setString(&raw.oif_name, device) }
        return raw
    }

    private static func raw(_ rule: NetlinkRule, operation: @autoclosure () -> String) throws(SystemError) -> tsmp_nl_rule {
        var raw = tsmp_nl_rule()
        raw.family = af(rule.family)
        raw.priority = rule.priority
        raw.table = rule.table
        raw.action = UInt8(TSMP_NL_FR_ACT_TO_TBL)
        raw.protocol = rule.protocolTag
        raw.ip_proto = rule.ipProtocol ?? 0
        if let destination = rule.destination {
            switch destination.address {
            case .v4(let a): raw.dst = a.value
            case .v6(let a): setAddress6(&raw.dst6, a)
            }
            raw.dst_len = destination.length
            raw.has_dst = 1
        }
        if let ports = rule.destinationPorts {
            raw.dport_start = ports.lowerBound
            raw.dport_end = ports.upperBound
        }
        raw.fwmask = rule.markClear ?? 0
        if let iif = rule.inputInterface {
            guard !iif.isEmpty, iif.utf8.count < Int(TSMP_NL_IFNAMSIZ) else { throw SystemError(operation(), errno: EINVAL) }
            setString(&raw.iif, iif)
        }
        return raw
    }

    /// Copies `value` into a fixed-size C char array, NUL-terminated (truncated if too long:
    /// names are checked before they get here).
    private static func setString<Tuple>(_ field: inout Tuple, _ value: String) {
        withUnsafeMutableBytes(of: &field) { bytes in
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            for (i, byte) in value.utf8.prefix(bytes.count - 1).enumerated() { bytes[i] = byte }
        }
    }

    /// A fixed-size C char array as a String; nil when empty.
    private static func string<Tuple>(_ field: Tuple) -> String? {
        withUnsafeBytes(of: field) { bytes in
            let text = bytes.prefix { $0 != 0 }
            return text.isEmpty ? nil : String(decoding: text, as: UTF8.self)
        }
    }
}

extension SystemError {
    /// Whether the error says the object is already gone (deleting twice, or its link has
    /// disappeared and taken it along): ENOENT, ESRCH, ENODEV, EADDRNOTAVAIL.
    public var meansAlreadyGone: Bool {
        errno == ENOENT || errno == ESRCH || errno == ENODEV || errno == EADDRNOTAVAIL
    }
}
