#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Telemetry
import Testing

/// sd_notify's protocol (sd_notify(3)), checked against a datagram socket of the test's own in
/// place of systemd's: what arrives, for a path and for an abstract name.
@Suite("systemd notification")
struct ServiceNotifierTests {
    /// A Unix datagram socket bound to `name` (a path, or `@NAME` for an abstract one).
    final class Listener: @unchecked Sendable {
        let fd: Int32
        let path: String?

        init(_ name: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            try #require(fd >= 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(name.utf8)
            if bytes.first == UInt8(ascii: "@") { bytes[0] = 0; path = nil } else { bytes.append(0); path = name }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            try #require(bound == 0, "bind \(name): errno \(errno)")
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        /// The next datagram (5 s at most), or nil.
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n < 0 ? nil : String(decoding: buffer[..<n], as: UTF8.self)
        }

        /// `receive()` on a Dispatch thread: an async test must not block the concurrency pool
        /// (two threads on two cores), where the watchdog's own task runs, and other suites' handlers.
        func received() async -> String? {
            await withCheckedContinuation { c in
                DispatchQueue.global().async { c.resume(returning: self.receive()) }
            }
        }

        deinit {
            close(fd)
            if let path { unlink(path) }
        }
    }

    static func uniqueName() -> String { "tsmp-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    @Test("READY=1 with a status arrives as one datagram at a socket path")
    func readyAtPath() throws {
        let path = NSTemporaryDirectory() + Self.uniqueName() + ".sock"
        let listener = try Listener(path)
        let notifier = ServiceNotifier(environment: ["NOTIFY_SOCKET": path])
        #expect(try notifier.ready(status: "forwarding on tsmp0\nqueues 2"))
        #expect(listener.receive() == "READY=1\nSTATUS=forwarding on tsmp0 queues 2")
        #expect(try notifier.stopping())
        #expect(listener.receive() == "STOPPING=1")
    }

    @Test("an abstract name (@...) is reached through the leading NUL byte")
    func abstractName() throws {
        let name = "@" + Self.uniqueName()
        let listener = try Listener(name)
        #expect(try ServiceNotifier(environment: ["NOTIFY_SOCKET": name]).send(["READY=1"]))
        #expect(listener.receive() == "READY=1")
    }

    @Test("without NOTIFY_SOCKET nothing is sent and nothing fails")
    func notUnderSystemd() throws {
        let notifier = ServiceNotifier(environment: [:])
        #expect(notifier.socketName == nil)
        #expect(try notifier.ready(status: "x") == false)
        #expect(notifier.watchdog(isWell: { true }) == nil)
    }

    @Test("a relative name, an oversized one, or a socket nobody listens on is an error naming NOTIFY_SOCKET")
    func badSocket() {
        for name in ["relative.sock", "/" + String(repeating: "a", count: 200), "/nonexistent/dir/notify.sock"] {
            #expect(throws: ServiceNotifierError.self) { try ServiceNotifier(environment: ["NOTIFY_SOCKET": name]).send(["READY=1"]) }
        }
        do {
            try ServiceNotifier(environment: ["NOTIFY_SOCKET": "relative.sock"]).send(["READY=1"])
        } catch {
            #expect(error.description.hasPrefix("NOTIFY_SOCKET relative.sock:"))
        }
    }

    @Test("WATCHDOG_USEC sets the interval only for the process WATCHDOG_PID names")
    func watchdogInterval() {
        #expect(ServiceNotifier(environment: ["WATCHDOG_USEC": "2000000"], pid: 7).watchdogInterval == .seconds(2))
        #expect(ServiceNotifier(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "7"], pid: 7).watchdogInterval == .seconds(2))
        #expect(ServiceNotifier(environment: ["WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "8"], pid: 7).watchdogInterval == nil)
        #expect(ServiceNotifier(environment: ["WATCHDOG_USEC": "soon"], pid: 7).watchdogInterval == nil)
        #expect(ServiceNotifier(environment: ["WATCHDOG_USEC": "0"], pid: 7).watchdogInterval == nil)
    }

    @Test("the watchdog pings every half interval while the service is well, and not when it is not")
    func watchdogPings() async throws {
        let path = NSTemporaryDirectory() + Self.uniqueName() + ".sock"
        let listener = try Listener(path)
        let well = ServiceNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"])
        let started = well.watchdog(isWell: { true })
        let task = try #require(started)
        #expect(await listener.received() == "WATCHDOG=1")
        #expect(await listener.received() == "WATCHDOG=1")
        task.cancel()
        _ = await task.value

        let unwell = ServiceNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"])
        var short = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(listener.fd, SOL_SOCKET, SO_RCVTIMEO, &short, socklen_t(MemoryLayout<timeval>.size))
        let quiet = unwell.watchdog(isWell: { false })
        let silent = try #require(quiet)
        #expect(await listener.received() == nil)
        silent.cancel()
        _ = await silent.value
    }
}
