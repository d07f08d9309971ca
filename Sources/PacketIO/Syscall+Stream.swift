#if canImport(Glibc)
import Glibc
#endif

/// Stream-socket calls for the local control client (`tsmp flows`, `tsmp migrate`): blocking,
/// with a receive/send timeout so a hung proxy can't hang the CLI.
extension Syscall {
    /// A TCP socket connected to `address:port` (IPv4), with `timeoutSeconds` on connect, send
    /// and receive. Close it with `Syscall.close`.
    public static func connectTCP(_ address: UInt32, port: UInt16, timeoutSeconds: Int = 10) throws(SystemError) -> Int32 {
        let fd = try tcpSocket()
        do throws(SystemError) {
            try connect(fd, to: address, port: port, timeoutSeconds: timeoutSeconds)
        } catch {
            try? close(fd)
            throw error
        }
        return fd
    }

    /// A TCP socket bound to `address` (0: any) and a port the kernel picked, not yet connected:
    /// what an agent answers an MTR with (DESIGN §7) before it connects from that port.
    public static func boundTCPSocket(address: UInt32 = 0) throws(SystemError) -> (fd: Int32, port: UInt16) {
        let fd = try tcpSocket()
        do throws(SystemError) {
            var sin = socketAddress(address, port: 0)
            _ = try blocking("bind") {
                withUnsafePointer(to: &sin) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            return (fd, try localEndpoint(fd).port)
        } catch {
            try? close(fd)
            throw error
        }
    }

    /// Connects `fd` (blocking) with `timeoutSeconds` on connect, send and receive.
    public static func connect(_ fd: Int32, to address: UInt32, port: UInt16, timeoutSeconds: Int = 10) throws(SystemError) {
        let tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        try setSocketOption(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, tv)
        try setSocketOption(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, tv)
        var sin = socketAddress(address, port: port)
        _ = try blocking("connect") {
            withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Clears the send/receive timeouts `connect` set (a handed-over socket blocks as usual).
    public static func clearTimeouts(_ fd: Int32) throws(SystemError) {
        let none = timeval(tv_sec: 0, tv_usec: 0)
        try setSocketOption(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, none)
        try setSocketOption(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, none)
    }

    /// The local address the kernel would use to reach `address:port` (a UDP socket is
    /// connected, which sends nothing, and asked its name): a device's current locator.
    public static func sourceAddress(toward address: UInt32, port: UInt16) throws(SystemError) -> UInt32 {
        let fd = try socket(domain: AF_INET, type: 2 /* SOCK_DGRAM */, protocol: 0)
        defer { try? close(fd) }
        var sin = socketAddress(address, port: port)
        _ = try blocking("connect") {
            withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        return try localEndpoint(fd).address
    }

    /// getsockname(2) of an IPv4 socket.
    public static func localEndpoint(_ fd: Int32) throws(SystemError) -> (address: UInt32, port: UInt16) {
        var sin = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = try blocking("getsockname") {
            withUnsafeMutablePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.getsockname(fd, $0, &length) }
            }
        }
        return (UInt32(bigEndian: sin.sin_addr.s_addr), UInt16(bigEndian: sin.sin_port))
    }

    /// A stream socket connected to the Unix-domain socket at `path`, with `timeoutSeconds` on
    /// send and receive: the proxy's root-only control socket. Throws with the errno that says
    /// why (ENOENT: nothing there, EACCES: not ours to use, ECONNREFUSED: nobody listens).
    public static func connectUnix(_ path: String, timeoutSeconds: Int = 10) throws(SystemError) -> Int32 {
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: sun.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { throw SystemError("connect \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &sun.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = try socket(domain: AF_UNIX, type: 1 /* SOCK_STREAM */, protocol: 0)
        do throws(SystemError) {
            let tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            try setSocketOption(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, tv)
            try setSocketOption(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, tv)
            _ = try blocking("connect") {
                withUnsafePointer(to: &sun) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
        } catch {
            try? close(fd)
            throw error
        }
        return fd
    }

    /// shutdown(2) of the sending half: the peer reads end of stream.
    public static func shutdownWrite(_ fd: Int32) throws(SystemError) {
        _ = try blocking("shutdown") { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    private static func tcpSocket() throws(SystemError) -> Int32 {
        // SOCK_STREAM (1): glibc declares it as an enum member Swift does not import here.
        try socket(domain: AF_INET, type: 1, protocol: 0)
    }

    private static func socketAddress(_ address: UInt32, port: UInt16) -> sockaddr_in {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr = in_addr(s_addr: address.bigEndian)
        return sin
    }

    /// Reads until end of stream or `limit` bytes.
    public static func readToEnd(_ fd: Int32, limit: Int = 64 << 20) throws(SystemError) -> [UInt8] {
        var out: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { chunk.deallocate() }
        while out.count < limit {
            switch try read(fd, into: chunk) {
            case .done(0): return out
            case .done(let n): out += UnsafeRawBufferPointer(rebasing: chunk[0..<n])
            case .wouldBlock: throw SystemError("read (timed out)", errno: EAGAIN)
            }
        }
        return out
    }
}
