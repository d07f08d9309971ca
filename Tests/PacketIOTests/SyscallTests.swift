import PacketIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SyscallTests {
    @Test func emptyNonBlockingPipeWouldBlockInsteadOfThrowing() throws {
        let pipe = try Syscall.pipe(flags: O_NONBLOCK)
        defer { try? Syscall.close(pipe.readEnd); try? Syscall.close(pipe.writeEnd) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let result = try buffer.withUnsafeMutableBytes { (raw) throws(SystemError) in try Syscall.read(pipe.readEnd, into: raw) }
        #expect(result == .wouldBlock)

        let written = try [UInt8]([1, 2, 3]).withUnsafeBytes { (raw) throws(SystemError) in try Syscall.write(pipe.writeEnd, raw) }
        #expect(written == .done(3))
        let read = try buffer.withUnsafeMutableBytes { (raw) throws(SystemError) in try Syscall.read(pipe.readEnd, into: raw) }
        #expect(read == .done(3))
        #expect(buffer.prefix(3) == [1, 2, 3])
    }

    @Test func eventfdCountsWakeUps() throws {
        let fd = try Syscall.eventfd()
        defer { try? Syscall.close(fd) }
        #expect(try Syscall.eventfdRead(fd) == .wouldBlock)
        _ = try Syscall.eventfdWrite(fd, 2)
        _ = try Syscall.eventfdWrite(fd)
        #expect(try Syscall.eventfdRead(fd) == .done(3))
    }

    @Test func pollSeesReadableEventfd() throws {
        let fd = try Syscall.eventfd()
        defer { try? Syscall.close(fd) }
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        #expect(try fds.withUnsafeMutableBufferPointer { (b) throws(SystemError) in try Syscall.poll(b, timeoutMilliseconds: 0) } == 0)
        _ = try Syscall.eventfdWrite(fd)
        #expect(try fds.withUnsafeMutableBufferPointer { (b) throws(SystemError) in try Syscall.poll(b, timeoutMilliseconds: 0) } == 1)
        #expect(fds[0].revents & Int16(POLLIN) != 0)
    }

    @Test func errorsNameTheOperationAndErrno() {
        #expect(throws: SystemError("close", errno: EBADF)) { try Syscall.close(-1) }
        do {
            _ = try Syscall.open("/nonexistent/tsmp/file", flags: O_RDONLY)
            Issue.record("open succeeded")
        } catch {
            #expect(error.errno == ENOENT)
            #expect(error.operation.contains("/nonexistent/tsmp/file"))
            #expect(error.description.contains("errno \(ENOENT)"))
        }
    }

    @Test func nonBlockingFlagRoundTrip() throws {
        let pipe = try Syscall.pipe()
        defer { try? Syscall.close(pipe.readEnd); try? Syscall.close(pipe.writeEnd) }
        #expect(try Syscall.getFlags(pipe.readEnd) & O_NONBLOCK == 0)
        try Syscall.setNonBlocking(pipe.readEnd)
        #expect(try Syscall.getFlags(pipe.readEnd) & O_NONBLOCK != 0)
    }

    @Test func loopbackHasAnIndexAndMadeUpNamesDoNot() throws {
        #expect(try Syscall.interfaceIndex("lo") != nil)
        #expect(try Syscall.interfaceIndex("tsmpnosuch0") == nil)
    }

    @Test func clocksMoveForward() {
        let a = Syscall.monotonicNow()
        let b = Syscall.monotonicNow()
        #expect(a <= b)
        #expect(Syscall.wallClockNow().nanoseconds > 1_600_000_000 * 1_000_000_000)
    }

    @Test func boundSocketHasAPortAndConnectsFromIt() throws {
        let loopback: UInt32 = 0x7F00_0001
        // A listener on loopback, from a bound socket + listen (the agent's side is only bind/connect).
        let listener = try Syscall.boundTCPSocket(address: loopback)
        defer { try? Syscall.close(listener.fd) }
        #expect(Glibc.listen(listener.fd, 1) == 0)
        let client = try Syscall.boundTCPSocket(address: loopback)
        defer { try? Syscall.close(client.fd) }
        #expect(client.port != 0 && client.port != listener.port)
        try Syscall.connect(client.fd, to: loopback, port: listener.port, timeoutSeconds: 2)
        #expect(try Syscall.localEndpoint(client.fd) == (loopback, client.port))
        #expect(try Syscall.sourceAddress(toward: loopback, port: 9) == loopback)
    }

    @Test func connectToAClosedPortThrowsNamingTheCall() throws {
        let loopback: UInt32 = 0x7F00_0001
        let unused = try Syscall.boundTCPSocket(address: loopback) // bound, never listening
        defer { try? Syscall.close(unused.fd) }
        #expect(throws: SystemError.self) { try Syscall.connectTCP(loopback, port: unused.port, timeoutSeconds: 2) }
    }
}
