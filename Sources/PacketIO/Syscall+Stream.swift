#if canImport(Glibc)
import Glibc
#endif

/// Stream-socket calls for the local control client (`tsmp flows`, `tsmp migrate`): blocking,
/// with a receive/send timeout so a hung proxy can't hang the CLI.
extension Syscall {
    /// A TCP socket connected to `address:port` (IPv4), with `timeoutSeconds` on connect, send
    /// and receive. Close it with `Syscall.close`.
    public static func connectTCP(_ address: UInt32, port: UInt16, timeoutSeconds: Int = 10) throws(SystemError) -> Int32 {
        // SOCK_STREAM (1) | SOCK_CLOEXEC (02000000): glibc declares them as enum members Swift does not import here.
        let fd = try socket(domain: AF_INET, type: 1 | 0o2000000, protocol: 0)
        let tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        do throws(SystemError) {
            try setSocketOption(fd, level: SOL_SOCKET, name: SO_RCVTIMEO, tv)
            try setSocketOption(fd, level: SOL_SOCKET, name: SO_SNDTIMEO, tv)
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = in_addr(s_addr: address.bigEndian)
            _ = try blocking("connect") {
                withUnsafePointer(to: &sin) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        } catch {
            try? close(fd)
            throw error
        }
        return fd
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
