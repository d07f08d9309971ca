#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A plain TCP client socket to 127.0.0.1:port, optionally from another loopback source
/// address (127.0.0.2 is a distinct source on Linux's loopback): for connections no HTTP
/// client would make (slow, idle, never handshaking). Closed on deinit.
final class RawSocket: @unchecked Sendable {
    let fd: Int32
    private(set) var received: [UInt8] = []
    private(set) var closedByServer = false

    /// nil when the socket can't be made or connected.
    init?(port: Int, from source: UInt32? = nil) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        if let source {
            var local = Self.address(source, port: 0)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else { close(fd); return nil }
        }
        var remote = Self.address(0x7F00_0001, port: UInt16(port))
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); return nil }
    }

    deinit { close(fd) }

    private static func address(_ ip: UInt32, port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(port.bigEndian)
        a.sin_addr.s_addr = in_addr_t(ip).bigEndian
        return a
    }

    /// Sends `text`; false when the connection is gone (no SIGPIPE).
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Reads what is there within `milliseconds` (until the server closes, or nothing more
    /// arrives in that time); sets ``closedByServer`` on EOF or reset.
    func drain(milliseconds: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !closedByServer {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, milliseconds) > 0 else { return }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { closedByServer = true } else { received += buffer[0..<n] }
        }
    }

    /// Waits up to `seconds` for the server to close, reading what it sends; the seconds it took.
    func waitForClose(seconds: Double) -> Double? {
        let start = Date()
        while !closedByServer, Date().timeIntervalSince(start) < seconds { drain(milliseconds: 100) }
        return closedByServer ? Date().timeIntervalSince(start) : nil
    }

    var text: String { String(decoding: received, as: UTF8.self) }

    static let secondLoopback: UInt32 = 0x7F00_0002
}

/// Runs blocking work (sockets waiting seconds, long loops) on a thread of its own: the
/// cooperative pool has as many threads as cores, and the endpoint's handlers run there.
func offThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.start()
    }
}
