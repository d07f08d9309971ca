#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gateway
import GatewayHost

/// What privileged tests need: root, the `ip` tool and TUN support.
enum Lab {
    static let isAvailable: Bool = getuid() == 0
        && FileManager.default.isExecutableFile(atPath: ip)
        && FileManager.default.fileExists(atPath: "/dev/net/tun")

    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"

    struct CommandFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `ip ARGUMENTS` and returns its output; throws with stderr when it fails.
    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandFailed(description: "ip \(arguments.joined(separator: " ")): "
                                + String(decoding: err, as: UTF8.self))
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A network namespace made by a test, with a small gateway inside:
///
///     veth-dev0 10.1.0.1/24 (devices)   veth-up 10.2.0.1/24 (uplink)   tsmp0 (TUN, down)
///
/// Everything the code under test does happens in here (through `run`), never in the
/// namespace the tests run in. Use `TestNamespace.with`, which always deletes it.
struct TestNamespace: Sendable {
    let name: String

    /// Creates a namespace, runs `body`, and deletes the namespace whatever happens.
    static func with<T>(_ body: (TestNamespace) throws -> T) throws -> T {
        removeStaleNamespaces()
        let namespace = TestNamespace(name: "tsmp-gwtest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try Lab.ip(["netns", "add", namespace.name])
        defer { _ = try? Lab.ip(["netns", "delete", namespace.name]) }
        try namespace.buildGateway()
        return try body(namespace)
    }

    /// Namespaces left by test processes that died before deleting them.
    private static func removeStaleNamespaces() {
        guard let list = try? Lab.ip(["netns", "list"]) else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard name.hasPrefix("tsmp-gwtest-"), parts.count == 4, let pid = Int32(parts[2]),
                  !GatewayProcess(pid: pid, startTime: nil).isRunning else { continue }
            _ = try? Lab.ip(["netns", "delete", name])
        }
    }

    private func buildGateway() throws {
        // IPv4 only: no IPv6 link-local addresses appearing (and changing) behind our back.
        try exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        try ip("link", "set", "lo", "up")
        for (link, peer, address) in [("veth-dev0", "veth-dev0p", "10.1.0.1/24"), ("veth-up", "veth-upp", "10.2.0.1/24")] {
            try ip("link", "add", link, "type", "veth", "peer", "name", peer)
            try ip("addr", "add", address, "dev", link)
            try ip("link", "set", link, "up")
            try ip("link", "set", peer, "up")
        }
        // A TUN as PacketIO's TunDevice leaves it: present and down. Up and down once, so it
        // has its qdisc already and `ip link` looks the same after our up/down.
        try ip("tuntap", "add", "dev", "tsmp0", "mode", "tun")
        try ip("link", "set", "tsmp0", "up")
        try ip("link", "set", "tsmp0", "down")
    }

    /// `ip -n NAME ARGUMENTS`.
    @discardableResult
    func ip(_ arguments: String...) throws -> String {
        try Lab.ip(["-n", name] + arguments)
    }

    /// Runs a program inside the namespace (`ip netns exec`).
    @discardableResult
    func exec(_ command: [String]) throws -> String {
        try Lab.ip(["netns", "exec", name] + command)
    }

    /// Runs `body` on a thread inside the namespace (netlink and /proc/sys/net there).
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try NetlinkNamespace.run(in: name, body)
    }

    /// Everything setup may touch, as `ip` prints it.
    func snapshot() throws -> Snapshot {
        Snapshot(rules: try ip("rule", "show"),
                 rulesDetailed: try ip("-d", "rule", "show"),
                 routes: try ip("route", "show", "table", "all"),
                 addresses: try ip("addr", "show"),
                 links: try ip("-d", "link", "show"),
                 ipForward: try exec(["cat", "/proc/sys/net/ipv4/ip_forward"]))
    }
}

/// The kernel configuration of a namespace, compared before and after.
struct Snapshot: Equatable, Sendable, CustomStringConvertible {
    var rules: String
    var rulesDetailed: String
    var routes: String
    var addresses: String
    var links: String
    var ipForward: String

    var description: String {
        "rules:\n\(rulesDetailed)routes:\n\(routes)addresses:\n\(addresses)links:\n\(links)ip_forward: \(ipForward)"
    }
}

/// What `ip rule show` prints in a fresh namespace with `extra` rules in between.
func ruleListing(_ extra: [String], localAtZero: Bool = true) -> String {
    let lines = (localAtZero ? ["0:\tfrom all lookup local"] : []) + extra
        + ["32766:\tfrom all lookup main", "32767:\tfrom all lookup default"]
    return lines.joined(separator: "\n") + "\n"
}
