#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PacketIO

/// The directory of state files (/run/tsmp/netns-INODE, one TUN.json per running proxy). Every write
/// replaces the whole file atomically (a temporary file renamed over it), so a reader never
/// sees half a file, whenever the writer dies.
public struct GatewayStateStore: Sendable {
    /// `/run/tsmp/netns-INODE`: /run is shared by every network namespace of the machine, so
    /// the state of each namespace's proxy lives apart and `tsmp proxy cleanup` only ever
    /// undoes what was done in the namespace it runs in.
    public static var defaultDirectory: String { "/run/tsmp/" + currentNamespaceName() }

    /// `netns-INODE` of this process's network namespace (`/proc/self/ns/net`).
    public static func currentNamespaceName() -> String {
        var st = stat()
        guard stat("/proc/self/ns/net", &st) == 0 else { return "netns-unknown" }
        return "netns-\(st.st_ino)"
    }

    public var directory: String

    public init(directory: String = GatewayStateStore.defaultDirectory) { self.directory = directory }

    public func path(forTun tunName: String) -> String { "\(directory)/\(tunName).json" }

    /// Writes `state` to its file, creating the directory if needed.
    public func save(_ state: GatewayState) throws(GatewayStateError) {
        let path = path(forTun: state.tunName)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(state).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw GatewayStateError(path: path, reason: "cannot write: \(error)")
        }
    }

    /// Reads the state file at `path`.
    public func load(path: String) throws(GatewayStateError) -> GatewayState {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw GatewayStateError(path: path, reason: "cannot read: \(error)")
        }
        do {
            let state = try JSONDecoder().decode(GatewayState.self, from: data)
            guard state.version <= GatewayState.currentVersion else {
                throw GatewayStateError(path: path, reason: "written by a newer tsmp (state version \(state.version))")
            }
            return state
        } catch let error as GatewayStateError {
            throw error
        } catch {
            throw GatewayStateError(path: path, reason: "not a tsmp state file: \(error)")
        }
    }

    /// The state file of `tunName`, or nil if there is none.
    public func load(tun tunName: String) throws(GatewayStateError) -> GatewayState? {
        let path = path(forTun: tunName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try load(path: path)
    }

    /// The flow checkpoint of shard `shard` of the proxy on `tunName` (`FlowCheckpointFile`):
    /// beside the state file, and removed with it (`remove(tun:)`), since the flows it holds
    /// live only as long as the configuration that state file records.
    public func checkpointPath(forTun tunName: String, shard: Int) -> String { "\(directory)/\(tunName).flows.\(shard)" }

    /// The flow checkpoint files of `tunName` present now (a snapshot being written included).
    public func checkpointPaths(forTun tunName: String) -> [String] {
        let prefix = "\(tunName).flows."
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { $0.hasPrefix(prefix) }.sorted().map { "\(directory)/\($0)" }
    }

    /// Deletes the flow checkpoint files of `tunName`; returns those it deleted.
    @discardableResult
    public func removeCheckpoints(tun tunName: String) -> [String] {
        checkpointPaths(forTun: tunName).filter { unlink($0) == 0 }
    }

    /// Deletes the state file of `tunName`, and its flow checkpoint; no error if it is already
    /// gone. Returns the checkpoint files deleted.
    @discardableResult
    public func remove(tun tunName: String) throws(GatewayStateError) -> [String] {
        let checkpoints = removeCheckpoints(tun: tunName)
        let path = path(forTun: tunName)
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            if FileManager.default.fileExists(atPath: path) {
                throw GatewayStateError(path: path, reason: "cannot delete: \(error)")
            }
        }
        removeDirectoryIfEmpty()
        return checkpoints
    }

    /// The per-namespace directory goes with its last state file, so nothing is left in /run.
    private func removeDirectoryIfEmpty() {
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: directory), entries.isEmpty {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Paths of every state file in the directory, sorted; none if the directory is missing.
    public func statePaths() throws(GatewayStateError) -> [String] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
                .sorted()
                .map { "\(directory)/\($0)" }
        } catch {
            throw GatewayStateError(path: directory, reason: "cannot list: \(error)")
        }
    }
}

/// A state file that cannot be read, written or deleted.
public struct GatewayStateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "state file \(path): \(reason)" }
}

/// A process, identified by pid and start time so that a recycled pid is not taken for it.
public struct GatewayProcess: Hashable, Sendable, CustomStringConvertible {
    public var pid: Int32
    /// /proc/PID/stat field 22 (clock ticks after boot); nil when unknown.
    public var startTime: UInt64?

    public init(pid: Int32, startTime: UInt64?) {
        self.pid = pid
        self.startTime = startTime
    }

    /// This process.
    public static var current: GatewayProcess {
        let pid = ProcessInfo.processInfo.processIdentifier
        return GatewayProcess(pid: pid, startTime: status(of: pid)?.startTime)
    }

    /// Whether the process still runs: /proc/PID exists, is not a zombie, and (when the start
    /// time is known) started when this one did.
    public var isRunning: Bool {
        guard pid > 0, let status = Self.status(of: pid), status.state != "Z", status.state != "X" else { return false }
        if let startTime { return status.startTime == startTime }
        return true
    }

    public var isCurrent: Bool { pid == ProcessInfo.processInfo.processIdentifier }

    public var description: String { "pid \(pid)" }

    /// State letter and start time from /proc/PID/stat; nil if there is no such process.
    static func status(of pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard let bytes = try? readFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses; the last ")" ends it.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }

    private static func readFile(_ path: String) throws(SystemError) -> [UInt8] {
        let fd = try Syscall.open(path, flags: O_RDONLY)
        defer { try? Syscall.close(fd) }
        return try Syscall.readToEnd(fd, limit: 4096)
    }
}
