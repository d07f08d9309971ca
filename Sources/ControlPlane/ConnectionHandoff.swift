#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import PacketIO

/// What the agent does with a connection it received (TSMP draft §4.2.1: "invoke its local
/// application"): run a command with the socket as its stdin and stdout, or bridge the socket
/// to a local TCP port.
public enum ConnectionHandoff: Sendable, CustomStringConvertible {
    /// `/bin/sh -c COMMAND`, the socket on fds 0 and 1, the transfer's details in TSMP_* variables.
    case exec(String)
    /// Bytes copied both ways between the socket and HOST:PORT (HOST an IPv4 or IPv6 literal,
    /// or a name for the system resolver), half-closes passed on.
    case forward(host: String, port: UInt16)

    public var description: String {
        switch self {
        case .exec(let command): "exec \(command)"
        case .forward(let host, let port): "forward \(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
    }

    /// Takes ownership of `fd` (a connected socket) and hands it over; returns at once.
    public func start(_ fd: Int32, environment: [String: String], logger: Logger) {
        switch self {
        case .exec(let command): Self.exec(command, fd: fd, environment: environment, logger: logger)
        case .forward(let host, let port): Self.forward(fd, to: host, port: port, logger: logger)
        }
    }

    private static func exec(_ command: String, fd: Int32, environment: [String: String], logger: Logger) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let socket = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        process.standardInput = socket
        process.standardOutput = socket
        do {
            try process.run()
        } catch {
            logger.error("cannot run the --exec command", metadata: ["command": "\(command)", "error": "\(error)"])
            try? Syscall.close(fd)
            return
        }
        // The child has its own copies of the socket on fds 0 and 1.
        try? Syscall.close(fd)
        let pid = process.processIdentifier
        logger.info("connection handed to command", metadata: ["command": "\(command)", "pid": "\(pid)"])
        Thread.detachNewThread {
            process.waitUntilExit()
            logger.info("command ended", metadata: ["pid": "\(pid)", "status": "\(process.terminationStatus)"])
        }
    }

    private static func forward(_ fd: Int32, to host: String, port: UInt16, logger: Logger) {
        Thread.detachNewThread {
            let local: Int32
            do {
                local = try Syscall.connectTCP(host: host, port: port, timeoutSeconds: 5)
                try Syscall.clearTimeouts(local)
            } catch {
                logger.error("cannot reach the --forward address", metadata: ["error": "\(error)"])
                try? Syscall.close(fd)
                return
            }
            logger.info("connection bridged", metadata: ["to": "\(ConnectionHandoff.forward(host: host, port: port))"])
            let done = DispatchGroup()
            for (from, to) in [(fd, local), (local, fd)] {
                done.enter()
                Thread.detachNewThread {
                    copy(from: from, to: to)
                    done.leave()
                }
            }
            done.wait()
            try? Syscall.close(fd)
            try? Syscall.close(local)
        }
    }

    /// Copies until end of stream or an error, then half-closes the other side.
    private static func copy(from: Int32, to: Int32) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            guard case .done(let n)? = try? Syscall.read(from, into: buffer), n > 0 else { break }
            do { try Syscall.writeAll(to, UnsafeRawBufferPointer(rebasing: buffer[0..<n])) } catch { break }
        }
        try? Syscall.shutdownWrite(to)
    }
}
