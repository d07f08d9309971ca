#if canImport(Glibc)
import Glibc
#endif

// MARK: - File names, modes and the descriptor limit

extension Syscall {
    /// rename(2): replaces `to` atomically. The error names both paths.
    public static func rename(_ from: String, to: String) throws(SystemError) {
        _ = try blocking("rename \(from) -> \(to)") { Glibc.rename(from, to) }
    }

    /// fchmod(2): `open`'s mode is filtered by the umask; this sets it exactly.
    public static func fchmod(_ fd: Int32, mode: mode_t) throws(SystemError) {
        _ = try blocking("fchmod") { Glibc.fchmod(fd, mode) }
    }

    /// The soft and hard limits on open descriptors (getrlimit(2) RLIMIT_NOFILE);
    /// `RLIM_INFINITY` is `UInt64.max`.
    public static func fileLimit() throws(SystemError) -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        _ = try blocking("getrlimit(RLIMIT_NOFILE)") { Glibc.getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Sets the soft limit on open descriptors (setrlimit(2) RLIMIT_NOFILE), keeping the hard one.
    public static func setFileLimit(soft: UInt64, hard: UInt64) throws(SystemError) {
        var limit = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
        _ = try blocking("setrlimit(RLIMIT_NOFILE)") { Glibc.setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) }
    }
}
