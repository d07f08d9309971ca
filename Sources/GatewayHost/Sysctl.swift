#if canImport(Glibc)
import Glibc
#endif
import PacketIO

/// Kernel parameters under /proc/sys, named as sysctl(8) names them ("net.ipv4.ip_forward").
///
/// /proc/sys/net belongs to the network namespace of the thread that opens the file, so a
/// thread inside a namespace (`NetlinkNamespace.run`) reads and writes that namespace's values.
public struct Sysctl: Sendable {
    /// Where the tree is mounted; tests may point this elsewhere.
    public var root: String

    public init(root: String = "/proc/sys") { self.root = root }

    /// The file for `key`. As in sysctl(8), a "/" inside a component stands for a "." in the
    /// file name (interface names: "net.ipv4.conf.eth0/100.rp_filter").
    public func path(for key: String) -> String {
        let components = key.split(separator: ".", omittingEmptySubsequences: false)
            .map { String($0.map { $0 == "/" ? "." : $0 }) }
        return ([root] + components).joined(separator: "/")
    }

    /// A key with an interface name in it: `key("net.ipv4.conf", interface: "eth0.100",
    /// "rp_filter")` is "net.ipv4.conf.eth0/100.rp_filter".
    public static func key(_ prefix: String, interface: String, _ name: String) -> String {
        "\(prefix).\(String(interface.map { $0 == "." ? "/" : $0 })).\(name)"
    }

    /// The current value, without the trailing newline.
    public func read(_ key: String) throws(SystemError) -> String {
        let bytes: [UInt8]
        do {
            let fd = try Syscall.open(path(for: key), flags: O_RDONLY)
            defer { try? Syscall.close(fd) }
            bytes = try Syscall.readToEnd(fd, limit: 4096)
        } catch {
            throw SystemError("read sysctl \(key)", errno: error.errno)
        }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }

    /// The current value, or nil when there is no such parameter (ENOENT: IPv6 keys on a kernel
    /// booted with ipv6.disable=1, an interface's keys after it is gone).
    public func readIfPresent(_ key: String) throws(SystemError) -> String? {
        do {
            return try read(key)
        } catch {
            if error.errno == ENOENT { return nil }
            throw error
        }
    }

    /// Sets `key` to `value`.
    public func write(_ key: String, _ value: String) throws(SystemError) {
        do {
            let fd = try Syscall.open(path(for: key), flags: O_WRONLY)
            defer { try? Syscall.close(fd) }
            let bytes = Array((value + "\n").utf8)
            try bytes.withUnsafeBytes { raw in try Syscall.writeAll(fd, raw) }
        } catch {
            throw SystemError("set sysctl \(key) = \(value)", errno: (error as? SystemError)?.errno ?? EIO)
        }
    }
}
