#if canImport(Glibc)
import Glibc
#endif
import Wire

/// Listening, accepting and datagram sockets of either family, non-blocking (the media relay's
/// event loop): the same invariants as the rest of the funnel.
extension Syscall {
    /// A non-blocking socket of `address`'s family and `type` (SOCK_STREAM, SOCK_DGRAM) bound
    /// to `address`, with SO_REUSEADDR (and IPV6_V6ONLY for IPv6: the IPv4 socket of the same
    /// port is another one); `listening`: listen(2) with a backlog of 128.
    public static func boundSocket(_ address: IPSocketAddress, type: Int32, listening: Bool = false) throws(SystemError) -> Int32 {
        let fd = try socket(domain: address.family, type: type | O_NONBLOCK /* SOCK_NONBLOCK: the same bit on Linux */, protocol: 0)
        do throws(SystemError) {
            try setSocketOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, Int32(1))
            if case .v6 = address { try setSocketOption(fd, level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, Int32(1)) }
            _ = try blocking("bind \(address)") { address.withSockaddr { Glibc.bind(fd, $0, $1) } }
            if listening { _ = try blocking("listen \(address)") { Glibc.listen(fd, 128) } }
        } catch {
            try? close(fd)
            throw error
        }
        return fd
    }

    /// accept4(2), non-blocking and close-on-exec: the connection and its peer.
    public static func accept(_ fd: Int32) throws(SystemError) -> IOResult<(fd: Int32, peer: IPSocketAddress?)> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try nonBlocking("accept") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) }
            }
        }
        guard case .done(let conn) = result else { return .wouldBlock }
        // accept4(2) is not in the Swift overlay: the flags are set afterwards.
        do throws(SystemError) {
            try setNonBlocking(conn)
            _ = try blocking("fcntl FD_CLOEXEC") { Glibc.fcntl(conn, F_SETFD, FD_CLOEXEC) }
        } catch {
            try? close(conn)
            throw error
        }
        let peer = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { IPSocketAddress($0) } }
        return .done((conn, peer))
    }

    /// recvfrom(2) into `buffer`: the length and the sender.
    public static func recvfrom(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<(count: Int, from: IPSocketAddress?)> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try nonBlocking("recvfrom") {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.recvfrom(fd, buffer.baseAddress, buffer.count, 0, $0, &length) }
            }
        }
        guard case .done(let n) = result else { return .wouldBlock }
        let from = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { IPSocketAddress($0) } }
        return .done((n, from))
    }

    /// sendto(2) of `bytes` to `address`.
    public static func sendto(_ fd: Int32, _ bytes: [UInt8], to address: IPSocketAddress) throws(SystemError) -> IOResult<Int> {
        let result: Result<IOResult<Int>, SystemError> = bytes.withUnsafeBytes { buf in
            address.withSockaddr { sa, len in Result { () throws(SystemError) in try sendto(fd, buf, address: sa, addressLength: len) } }
        }
        return try result.get()
    }

    /// Starts connecting the non-blocking `fd` to `address`: true when connected at once,
    /// false while in progress (poll for POLLOUT, then `pendingError`).
    public static func startConnect(_ fd: Int32, to address: IPSocketAddress) throws(SystemError) -> Bool {
        while true {
            let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            if rc == 0 { return true }
            switch Glibc.errno {
            case EINTR: continue
            case EINPROGRESS: return false
            case let code: throw SystemError("connect to \(address)", errno: code)
            }
        }
    }

    /// SO_ERROR: the outcome of a non-blocking connect (0: connected).
    public static func pendingError(_ fd: Int32) throws(SystemError) -> Int32 {
        try getSocketOption(fd, level: SOL_SOCKET, name: SO_ERROR, initial: Int32(0))
    }

    /// Where an accepted connection was going before a netfilter redirect (SO_ORIGINAL_DST,
    /// IP6T_SO_ORIGINAL_DST: from conntrack), for a socket of `ipv6`'s family; an error when
    /// nothing redirected it (ENOENT).
    public static func originalDestination(_ fd: Int32, ipv6: Bool = false) throws(SystemError) -> IPSocketAddress {
        let soOriginalDst: Int32 = 80
        guard ipv6 else {
            let sin = try getSocketOption(fd, level: Int32(IPPROTO_IP), name: soOriginalDst, initial: sockaddr_in())
            return .v4(address: UInt32(bigEndian: sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        }
        // sockaddr_in6 (its address a union) is not BitwiseCopyable: read it as storage bytes.
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = try blocking("getsockopt IP6T_SO_ORIGINAL_DST") {
            withUnsafeMutableBytes(of: &storage) { Glibc.getsockopt(fd, Int32(IPPROTO_IPV6), soOriginalDst, $0.baseAddress, &length) }
        }
        let address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { IPSocketAddress($0) } }
        guard let address else { throw SystemError("getsockopt IP6T_SO_ORIGINAL_DST", errno: EAFNOSUPPORT) }
        return address
    }

    /// getsockname(2).
    public static func localAddress(_ fd: Int32) throws(SystemError) -> IPSocketAddress { try socketName(fd) }
}

extension IPEndpoint {
    /// A socket address as Wire's endpoint.
    public init(_ a: IPSocketAddress) {
        switch a {
        case .v4(let address, let port):
            self.init(.v4(IPv4Address(address)), port)
        case .v6(let bytes, let port, _):
            var high: UInt64 = 0, low: UInt64 = 0
            for (i, b) in bytes.prefix(16).enumerated() {
                if i < 8 { high = high << 8 | UInt64(b) } else { low = low << 8 | UInt64(b) }
            }
            self.init(.v6(IPv6Address(high: high, low: low)), port)
        }
    }
}
