#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Where the proxy's local control endpoint lives (`tsmp flows`, `tsmp migrate --flow`): a
/// Unix socket beside the proxy's state file, `/run/tsmp/netns-INODE/TUN.sock`, mode 0600,
/// and only root (or the proxy's own user) passes its `SO_PEERCRED` check. One per proxy, so
/// the CLI finds the one proxy of its network namespace without being told.
public enum LocalControlSocket {
    public static let suffix = ".sock"

    /// The default socket of the proxy with this TUN in this network namespace.
    public static func defaultPath(tun: String, stateDirectory: String = GatewayStateStore.defaultDirectory) -> String {
        "\(stateDirectory)/\(tun)\(suffix)"
    }

    /// Who may use it: root and the user the proxy runs as.
    public static var allowedUIDs: Set<UInt32> { [0, geteuid()] }

    /// Checks a `--control` value: a path (absolute, at most 107 bytes: `sun_path`), and says
    /// what changed when it is the old `ADDR:PORT` form.
    public static func validate(_ value: String) -> String? {
        if !value.contains("/"), value.contains(":") {
            return "--control \(value): the control endpoint is a root-only Unix socket now, not a TCP port "
                + "(a loopback port let every local user list and move flows); give a path, or leave it out for the default"
        }
        guard value.hasPrefix("/") else { return "--control \(value): give an absolute path for the control socket" }
        guard value.utf8.count <= 107 else { return "--control \(value): a Unix socket path has at most 107 bytes" }
        return nil
    }
}
