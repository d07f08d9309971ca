import Glibc
import PacketIO
import Testing

/// The system resolver and both families for the control plane's own sockets (issue "IPv6 and
/// dual stack", item 4), on loopback only.
@Suite struct ResolveTests {
    @Test("literals of both families resolve to themselves; localhost to a loopback address; a bad name says why")
    func resolve() throws {
        #expect(try Syscall.resolve("127.0.0.1", port: 80) == [.v4(address: 0x7F00_0001, port: 80)])
        let v6 = try Syscall.resolve("::1", port: 443)
        #expect(v6.count == 1 && v6[0].literal == "::1" && v6[0].description == "[::1]:443")
        let local = try Syscall.resolve("localhost", port: 9)
        #expect(!local.isEmpty && local.allSatisfy { $0.literal == "127.0.0.1" || $0.literal == "::1" })
        #expect(throws: ResolveError.self) { try Syscall.resolve("no-such-host.invalid", port: 9) }
    }

    @Test("the source address toward a loopback address of each family is that family's loopback")
    func sourceAddress() throws {
        #expect(try Syscall.sourceAddress(toward: .v4(address: 0x7F00_0001, port: 7)).literal == "127.0.0.1")
        let v6 = try #require(try Syscall.resolve("::1", port: 7).first)
        #expect(try Syscall.sourceAddress(toward: v6).literal == "::1")
    }

    @Test("connectTCP(host:) reaches a listener on IPv6 loopback; a closed port is refused with the address named")
    func connect() throws {
        let listener = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_addr = in6addr_loopback
        let bound = withUnsafePointer(to: &sin6) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        #expect(bound == 0 && listen(listener, 4) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = UInt16(bigEndian: sin6.sin6_port)
        let fd = try Syscall.connectTCP(host: "::1", port: port, timeoutSeconds: 2)
        #expect(fd >= 0)
        try Syscall.close(fd)
        close(listener)
        #expect { try Syscall.connectTCP(host: "::1", port: port, timeoutSeconds: 2) } throws: { "\($0)".contains("[::1]:\(port)") }
    }
}
