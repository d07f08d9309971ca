#if canImport(Glibc)
import Glibc
#endif
import Wire

/// A TCP/UDP socket address of either family: what the system resolver gives for a host, and
/// what a socket's name is.
public enum IPSocketAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(address: UInt32, port: UInt16)
    /// `address` in network order (16 bytes); `scope`: the interface of a link-local address.
    case v6(address: [UInt8], port: UInt16, scope: UInt32)

    public var port: UInt16 {
        switch self {
        case .v4(_, let port), .v6(_, let port, _): port
        }
    }

    /// The address alone as inet_ntop(3) writes it (IPv6 canonical, RFC 5952; no brackets).
    public var literal: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch self {
        case .v4(let address, _):
            var a = in_addr(s_addr: address.bigEndian)
            _ = inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
        case .v6(let bytes, _, _):
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) { $0.copyBytes(from: bytes.prefix(16)) }
            _ = inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `ADDRESS:PORT`, an IPv6 address in brackets.
    public var description: String {
        switch self {
        case .v4: "\(literal):\(port)"
        case .v6: "[\(literal)]:\(port)"
        }
    }

    var family: Int32 {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    /// Calls `body` with the address as a `sockaddr` and its length.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch self {
        case .v4(let address, let port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = in_addr(s_addr: address.bigEndian)
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let bytes, let port, let scope):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scope
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes.prefix(16)) }
            return withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// Wire's endpoint as a socket address (an IPv6 one without a scope: not link-local).
    public init(_ e: IPEndpoint) {
        switch e.address {
        case .v4(let a): self = .v4(address: a.value, port: e.port)
        case .v6(let a): self = .v6(address: withUnsafeBytes(of: (a.high.bigEndian, a.low.bigEndian)) { Array($0) }, port: e.port, scope: 0)
        }
    }

    /// The address in a `sockaddr` of either family; nil for another family.
    init?(_ storage: UnsafePointer<sockaddr>) {
        switch Int32(storage.pointee.sa_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(storage).loadUnaligned(as: sockaddr_in.self)
            self = .v4(address: UInt32(bigEndian: sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = UnsafeRawPointer(storage).loadUnaligned(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            self = .v6(address: bytes, port: UInt16(bigEndian: sin6.sin6_port), scope: sin6.sin6_scope_id)
        default:
            return nil
        }
    }
}

/// A host name the system resolver could not turn into an address.
public struct ResolveError: Error, Equatable, Sendable, CustomStringConvertible {
    public let host: String
    public let reason: String
    public var description: String { "cannot resolve \(host): \(reason)" }
    public init(host: String, reason: String) { self.host = host; self.reason = reason }
}

/// Names and both address families for the control plane's own connections (issue "IPv6 and
/// dual stack", item 4): the agent's locator toward its proxy and its `--forward` target.
extension Syscall {
    /// The addresses of `host` (an IPv4 or IPv6 literal, or a name the system resolver knows:
    /// /etc/hosts, DNS) for a TCP connection to `port`, in the resolver's order of preference
    /// (RFC 6724 destination address selection).
    public static func resolve(_ host: String, port: UInt16) throws(ResolveError) -> [IPSocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = 1 // SOCK_STREAM
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw ResolveError(host: host, reason: status == 0 ? "no address" : String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var out: [IPSocketAddress] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            if let sa = info.pointee.ai_addr, let address = IPSocketAddress(sa), !out.contains(address) { out.append(address) }
            next = info.pointee.ai_next
        }
        guard !out.isEmpty else { throw ResolveError(host: host, reason: "no IPv4 or IPv6 address") }
        return out
    }

    /// `addresses` with the IPv4 ones first, each family in its order: what the control plane
    /// connects to while the data plane manages IPv4 flows only (issue "IPv6 and dual stack"):
    /// the proxy attributes flows to a device by the address its request came from, and a
    /// namespace takes a locator only from the address it is, so a dual-stack device must
    /// speak from the family of its flows.
    public static func preferringIPv4(_ addresses: [IPSocketAddress]) -> [IPSocketAddress] {
        addresses.filter { if case .v4 = $0 { true } else { false } } + addresses.filter { if case .v6 = $0 { true } else { false } }
    }

    /// A TCP socket connected to `address`, with `timeoutSeconds` on connect, send and receive.
    public static func connectTCP(_ address: IPSocketAddress, timeoutSeconds: Int = 10) throws(SystemError) -> Int32 {
        let fd = try socket(domain: address.family, type: 1 /* SOCK_STREAM */, protocol: 0)
        do throws(SystemError) {
            let tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            try setSocketOption(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, tv)
            try setSocketOption(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, tv)
            _ = try blocking("connect to \(address)") { address.withSockaddr { Glibc.connect(fd, $0, $1) } }
        } catch {
            try? close(fd)
            throw error
        }
        return fd
    }

    /// A TCP socket of `address`'s family bound to the wildcard address and a port the kernel
    /// chooses (the MTR's source port, announced before the connection is made).
    public static func boundTCPSocket(like address: IPSocketAddress) throws(SystemError) -> (fd: Int32, port: UInt16) {
        let fd = try socket(domain: address.family, type: 1 /* SOCK_STREAM */, protocol: 0)
        do throws(SystemError) {
            let wildcard: IPSocketAddress = switch address {
            case .v4: .v4(address: 0, port: 0)
            case .v6: .v6(address: [UInt8](repeating: 0, count: 16), port: 0, scope: 0)
            }
            _ = try blocking("bind") { wildcard.withSockaddr { Glibc.bind(fd, $0, $1) } }
            return (fd, try socketName(fd).port)
        } catch {
            try? close(fd)
            throw error
        }
    }

    /// Connects `fd` (blocking, a socket of `address`'s family) with `timeoutSeconds` on
    /// connect, send and receive.
    public static func connect(_ fd: Int32, to address: IPSocketAddress, timeoutSeconds: Int = 10) throws(SystemError) {
        let tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        try setSocketOption(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, tv)
        try setSocketOption(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, tv)
        _ = try blocking("connect to \(address)") { address.withSockaddr { Glibc.connect(fd, $0, $1) } }
    }

    /// A TCP socket connected to `host:port`: each address the resolver gives, in its order,
    /// until one answers. The error names every address tried.
    public static func connectTCP(host: String, port: UInt16, timeoutSeconds: Int = 10) throws -> Int32 {
        var failures: [String] = []
        for address in try resolve(host, port: port) {
            do { return try connectTCP(address, timeoutSeconds: timeoutSeconds) } catch { failures.append("\(error)") }
        }
        throw SystemError("connect to \(host):\(port) (\(failures.joined(separator: "; ")))", errno: ECONNREFUSED)
    }

    /// The local address the kernel would use to reach `address` (a UDP socket is connected,
    /// which sends nothing, and asked its name): a device's current locator, either family.
    public static func sourceAddress(toward address: IPSocketAddress) throws(SystemError) -> IPSocketAddress {
        let fd = try socket(domain: address.family, type: 2 /* SOCK_DGRAM */, protocol: 0)
        defer { try? close(fd) }
        _ = try blocking("connect") { address.withSockaddr { Glibc.connect(fd, $0, $1) } }
        return try socketName(fd)
    }

    /// A socket's own address (getsockname(2)), either family.
    static func socketName(_ fd: Int32) throws(SystemError) -> IPSocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try blocking("getsockname") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.getsockname(fd, $0, &length) }
            }
        }
        let local = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { IPSocketAddress($0) } }
        guard let local else { throw SystemError("getsockname", errno: EAFNOSUPPORT) }
        return local
    }
}
