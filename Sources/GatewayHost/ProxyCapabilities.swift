#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// What `tsmp proxy` needs from the kernel: not uid 0, but two capabilities in its effective
/// set (capabilities(7)). CAP_NET_ADMIN creates the TUN device, its addresses, routes, policy
/// rules and nftables tables and writes the namespace's net sysctls; CAP_NET_RAW opens the raw
/// socket of `--no-offload`. A service user given both (systemd's `AmbientCapabilities=`, or
/// `setpriv --ambient-caps`) runs the proxy as well as root does.
public enum ProxyCapabilities {
    /// A capability by its number in `linux/capability.h`.
    public struct Capability: Hashable, Sendable, CustomStringConvertible {
        public let number: Int
        public let name: String
        public let why: String

        public static let netAdmin = Capability(number: 12, name: "CAP_NET_ADMIN", why: "TUN device, routes, policy rules, nftables, sysctls")
        public static let netRaw = Capability(number: 13, name: "CAP_NET_RAW", why: "the raw socket")

        public var description: String { name }
    }

    public static let needed: [Capability] = [.netAdmin, .netRaw]

    /// The effective set from `/proc/PID/status` text (`CapEff:\t0000003fffffffff`, hex), or
    /// nil when the line is missing or not hex.
    public static func effectiveSet(statusText: String) -> UInt64? {
        for line in statusText.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return nil
    }

    /// The capabilities of `needed` that `effective` lacks, in order.
    public static func missing(from effective: UInt64, needed: [Capability] = needed) -> [Capability] {
        needed.filter { effective & (UInt64(1) << UInt64($0.number)) == 0 }
    }

    /// Why this process can't run the proxy, naming each missing capability; nil when it can.
    /// `statusText` defaults to this process's `/proc/self/status`.
    public static func problem(statusText: String? = nil, needed: [Capability] = needed, command: String = "tsmp proxy") -> String? {
        guard let text = statusText ?? (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) else {
            return "cannot read /proc/self/status to check the capabilities \(command) needs (\(needed.map(\.name).joined(separator: ", ")))"
        }
        guard let effective = effectiveSet(statusText: text) else {
            return "no CapEff line in /proc/self/status: cannot check the capabilities \(command) needs (\(needed.map(\.name).joined(separator: ", ")))"
        }
        let lacking = missing(from: effective, needed: needed)
        guard !lacking.isEmpty else { return nil }
        return "\(command) needs " + lacking.map { "\($0.name) (\($0.why))" }.joined(separator: " and ")
            + " in its effective capability set; missing: " + lacking.map(\.name).joined(separator: ", ")
            + ". Run it as root, or as a service user with AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW (systemd), "
            + "or: setpriv --inh-caps +net_admin,+net_raw --ambient-caps +net_admin,+net_raw ..."
    }

    /// Why the TUN device can't be opened, or nil when it can. Capabilities don't open it: the
    /// proxy's user needs read and write access to the node (the kernel makes it 0666; some
    /// containers make it 0600), and without this check the refusal would come from TUNSETIFF,
    /// after nothing else was done, but naming the wrong step.
    public static func tunDeviceProblem(path: String = "/dev/net/tun") -> String? {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        if fd >= 0 {
            close(fd)
            return nil
        }
        let reason = String(cString: strerror(errno))
        return "cannot open \(path): \(reason) (the user tsmp proxy runs as needs read and write access to it; the kernel creates it with mode 0666)"
    }
}
