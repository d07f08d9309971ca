#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Tells systemd how a `Type=notify` service is doing (sd_notify(3)): `READY=1` once it serves,
/// `WATCHDOG=1` while it is well when the unit sets `WatchdogSec=`, `STOPPING=1` on the way out.
///
/// The protocol, written out here so no libsystemd is linked: one datagram per message, a
/// newline-separated list of `KEY=VALUE`, sent to the `AF_UNIX` socket named in
/// `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`, whose `@` becomes the
/// leading NUL byte of `sun_path`). Without `$NOTIFY_SOCKET` (not started by systemd) every call
/// does nothing. Telemetry depends on nothing but swift-log, so these few socket calls are made
/// here directly rather than through PacketIO's syscall funnel.
public struct ServiceNotifier: Sendable {
    /// `$NOTIFY_SOCKET`, or nil when there is nobody to tell.
    public let socketName: String?
    /// From `$WATCHDOG_USEC` (when `$WATCHDOG_PID`, if set, is this process): how often systemd
    /// wants to hear from the service at the latest.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: Int32 = getpid()) {
        let name = environment["NOTIFY_SOCKET"]
        socketName = (name?.isEmpty ?? true) ? nil : name
        if let usec = environment["WATCHDOG_USEC"].flatMap({ Int64($0) }), usec > 0,
           environment["WATCHDOG_PID"].map({ Int32($0) == pid }) ?? true {
            watchdogInterval = .microseconds(usec)
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends `fields` (e.g. `["READY=1", "STATUS=forwarding"]`) as one message. Returns false
    /// when there is no `$NOTIFY_SOCKET`; throws when there is one and the message can't go.
    @discardableResult
    public func send(_ fields: [String]) throws(ServiceNotifierError) -> Bool {
        guard let socketName else { return false }
        let (address, length) = try Self.address(socketName)
        var storage = address
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ServiceNotifierError(socket: socketName, reason: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let message = Array(fields.joined(separator: "\n").utf8)
        // A datagram socket raises no SIGPIPE: no flags needed.
        let sent = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, length) }
            }
        }
        guard sent == message.count else {
            throw ServiceNotifierError(socket: socketName, reason: "send: \(sent < 0 ? String(cString: strerror(errno)) : "short write")")
        }
        return true
    }

    /// `READY=1` with a one-line status for `systemctl status`.
    @discardableResult
    public func ready(status: String) throws(ServiceNotifierError) -> Bool {
        try send(["READY=1", "STATUS=\(Self.oneLine(status))"])
    }

    /// `STOPPING=1`: systemd shows the unit as deactivating while the service cleans up.
    @discardableResult
    public func stopping() throws(ServiceNotifierError) -> Bool { try send(["STOPPING=1"]) }

    /// Sends `WATCHDOG=1` every half `watchdogInterval` for as long as `isWell()` says so and
    /// the task is not cancelled (nothing when the unit sets no `WatchdogSec=`). A service that
    /// hangs (`isWell` never returns) or is unwell stops the pings, and systemd restarts it.
    public func watchdog(isWell: @escaping @Sendable () async -> Bool) -> Task<Void, Never>? {
        guard let interval = watchdogInterval, socketName != nil else { return nil }
        let notifier = self
        return Task {
            while !Task.isCancelled {
                if await isWell() { _ = try? notifier.send(["WATCHDOG=1"]) }
                try? await Task.sleep(for: interval / 2)
            }
        }
    }

    static func oneLine(_ text: String) -> String {
        text.replacingOccurrences(of: "\n", with: " ")
    }

    /// The `sockaddr_un` for `name` and its length: a path (absolute, NUL-terminated) or, for
    /// `@NAME`, an abstract name (leading NUL, no terminator; the length says where it ends).
    static func address(_ name: String) throws(ServiceNotifierError) -> (storage: sockaddr_un, length: socklen_t) {
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract {
            bytes[0] = 0
        } else {
            guard bytes.first == UInt8(ascii: "/") else {
                throw ServiceNotifierError(socket: name, reason: "neither an absolute path nor an abstract name (@...)")
            }
            bytes.append(0)
        }
        let capacity = MemoryLayout.size(ofValue: storage.sun_path)
        guard bytes.count <= capacity, bytes.count > 1 else {
            throw ServiceNotifierError(socket: name, reason: "a socket name has 1 to \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &storage.sun_path) { raw in raw.copyBytes(from: bytes) }
        let length = (MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? MemoryLayout<sa_family_t>.size) + bytes.count
        return (storage, socklen_t(length))
    }
}

/// `$NOTIFY_SOCKET` is unusable, or the message did not go.
public struct ServiceNotifierError: Error, Sendable, Equatable, CustomStringConvertible {
    public var socket: String
    public var reason: String
    public var description: String { "NOTIFY_SOCKET \(socket): \(reason)" }
}
