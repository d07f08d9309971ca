import ControlPlane
import Foundation
import Logging
import PacketIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What the agent does with a received connection, on loopback: --forward bridges both ways
/// and passes half-closes on; --exec gives the command the socket and the details.
@Suite("Connection hand-off")
struct ConnectionHandoffTests {
    static let loopback: UInt32 = 0x7F00_0001

    /// A connected pair: (the side handed over, the far side standing in for the server).
    static func connectedPair() throws -> (handed: Int32, far: Int32, listener: Int32) {
        let listener = try Syscall.boundTCPSocket(address: loopback)
        #expect(listen(listener.fd, 1) == 0)
        let handed = try Syscall.connectTCP(loopback, port: listener.port, timeoutSeconds: 2)
        let far = accept(listener.fd, nil, nil)
        #expect(far >= 0)
        return (handed, far, listener.fd)
    }

    static func read(_ fd: Int32, count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { buffer.deallocate() }
        while out.count < count, case .done(let n) = try Syscall.read(fd, into: buffer), n > 0 {
            out += UnsafeRawBufferPointer(rebasing: buffer[0..<n])
        }
        return out
    }

    @Test("--forward (a host name: each of its addresses in turn) copies both ways and passes the end of each direction on")
    func forward() throws {
        let pair = try Self.connectedPair()
        defer { try? Syscall.close(pair.far); try? Syscall.close(pair.listener) }
        let app = try Syscall.boundTCPSocket(address: Self.loopback)
        defer { try? Syscall.close(app.fd) }
        #expect(listen(app.fd, 1) == 0)
        ConnectionHandoff.forward(host: "localhost", port: app.port).start(pair.handed, environment: [:], logger: Logger(label: "test"))
        let local = accept(app.fd, nil, nil)
        #expect(local >= 0)
        defer { try? Syscall.close(local) }
        let timeout = timeval(tv_sec: 5, tv_usec: 0)
        try Syscall.setSocketOption(local, level: SOL_SOCKET, name: SO_RCVTIMEO, timeout)
        try Syscall.setSocketOption(pair.far, level: SOL_SOCKET, name: SO_RCVTIMEO, timeout)

        let down = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Syscall.writeAll(pair.far, down)
        try Syscall.shutdownWrite(pair.far)
        #expect(try Self.read(local, count: down.count + 1) == down) // then end of stream
        try Syscall.writeAll(local, Array("reply".utf8))
        try Syscall.shutdownWrite(local)
        #expect(try Self.read(pair.far, count: 6) == Array("reply".utf8))
    }

    @Test("--exec runs the command with the socket as stdin and stdout and the details in its environment")
    func exec() throws {
        let pair = try Self.connectedPair()
        defer { try? Syscall.close(pair.far); try? Syscall.close(pair.listener) }
        let timeout = timeval(tv_sec: 5, tv_usec: 0)
        try Syscall.setSocketOption(pair.far, level: SOL_SOCKET, name: SO_RCVTIMEO, timeout)
        ConnectionHandoff.exec("printf '%s:' \"$TSMP_MIGRATION_ID\"; tr a-z A-Z")
            .start(pair.handed, environment: ["TSMP_MIGRATION_ID": "42"], logger: Logger(label: "test"))
        try Syscall.writeAll(pair.far, Array("hello".utf8))
        try Syscall.shutdownWrite(pair.far)
        #expect(String(decoding: try Self.read(pair.far, count: 100), as: UTF8.self) == "42:HELLO")
    }
}
