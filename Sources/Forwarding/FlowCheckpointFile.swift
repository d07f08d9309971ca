#if canImport(Glibc)
import Glibc
#endif
import Engine
import PacketIO

/// The flow checkpoint on disk (issue "Survive a proxy restart", item 1), in the records of
/// `CheckpointCodec`: a snapshot of the live flows, then one record appended per flow event.
///
/// Where and why: beside the gateway's state file, `/run/tsmp/netns-INODE/TUN.flows`. /run is
/// a tmpfs, so the checkpoint lives exactly as long as the kernel state it goes with (policy
/// rules, the kernel path's table): a proxy that crashes or is restarted finds both, a reboot
/// clears both. For the same reason nothing is fsynced: a record is safe once `write`
/// returned, against any end of the process. A `kill -9` inside a `write` can leave the last
/// record cut short; the reader reports it and does not apply it (`TornRecord`).
///
/// Crash-safe replacement: a snapshot is written to `PATH.new` and renamed over `PATH`
/// (rename(2) is atomic), so a reader sees the old file or the new one, never a mix. The file
/// is compacted that way when appends have made it more than twice its live size.
public final class FlowCheckpointFile {
    public let path: String
    public let setup: UInt64
    /// The shard whose flows the file holds (its header).
    public let shard: CheckpointCodec.Shard
    private var fd: Int32 = -1
    /// Bytes in the file, and bytes its last snapshot had.
    private(set) var fileBytes = 0
    private var snapshotBytes = 0
    /// Appends that make the file at least this large may compact it.
    static let compactAbove = 1 << 20

    /// No checkpoint file is read beyond this. 100,000 flows take about 7 MB; the bytes
    /// migrations hold are bounded by the in-flight budget (512 MiB by default, over all
    /// shards), and appends make a file at most twice its snapshot before it is compacted.
    public static let maxBytes = 2 << 30

    /// Reads what a previous proxy left at `path`: nil when there is no file.
    public static func read(path: String, setup: UInt64, limit: Int = maxBytes) throws(FlowCheckpointFileError) -> CheckpointCodec.Contents? {
        let fd: Int32
        do {
            fd = try Syscall.open(path, flags: O_RDONLY)
        } catch {
            if error.errno == ENOENT { return nil }
            throw FlowCheckpointFileError(path: path, reason: "cannot read: \(error)")
        }
        defer { try? Syscall.close(fd) }
        let bytes: [UInt8]
        do {
            bytes = try Syscall.readToEnd(fd, limit: limit + 1)
        } catch {
            throw FlowCheckpointFileError(path: path, reason: "cannot read: \(error)")
        }
        guard bytes.count <= limit else {
            throw FlowCheckpointFileError(path: path, reason: "larger than \(limit) bytes: not a checkpoint this proxy wrote")
        }
        do {
            return try CheckpointCodec.decode(bytes, setup: setup)
        } catch {
            throw FlowCheckpointFileError(path: path, reason: error.description)
        }
    }

    /// Starts the checkpoint at `path` with `flows` (what was adopted, or nothing): the file is
    /// replaced atomically, then appended to.
    public init(path: String, setup: UInt64, shard: CheckpointCodec.Shard = .single,
                flows: [FlowCheckpoint] = []) throws(FlowCheckpointFileError) {
        self.path = path
        self.setup = setup
        self.shard = shard
        try replace(with: flows)
    }

    deinit {
        if fd >= 0 { try? Syscall.close(fd) }
    }

    /// Appends records (`CheckpointCodec.record`, `.gone`) in one write.
    public func append(_ records: [UInt8]) throws(FlowCheckpointFileError) {
        guard !records.isEmpty else { return }
        do {
            try Syscall.writeAll(fd, records)
        } catch {
            throw FlowCheckpointFileError(path: path, reason: "cannot append: \(error)")
        }
        fileBytes += records.count
    }

    /// Whether the file has grown enough that `compact` should rewrite it.
    public var wantsCompaction: Bool { fileBytes >= Self.compactAbove && fileBytes > 2 * snapshotBytes }

    /// Rewrites the file as a snapshot of `flows` (the live ones), atomically.
    public func compact(flows: [FlowCheckpoint]) throws(FlowCheckpointFileError) {
        try replace(with: flows)
    }

    /// Removes the file (a clean stop, or `tsmp proxy cleanup`).
    public func remove() {
        if fd >= 0 { try? Syscall.close(fd); fd = -1 }
        try? Syscall.unlink(path)
    }

    private func replace(with flows: [FlowCheckpoint]) throws(FlowCheckpointFileError) {
        let snapshot = CheckpointCodec.snapshot(setup: setup, shard: shard, flows: flows)
        let staging = path + ".new"
        do {
            // O_APPEND: each record goes to the end, whatever the offset.
            let newFD = try Syscall.open(staging, flags: O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, mode: 0o600)
            do {
                try Syscall.fchmod(newFD, mode: 0o600)
                try Syscall.writeAll(newFD, snapshot)
                try Syscall.rename(staging, to: path)
            } catch {
                try? Syscall.close(newFD)
                try? Syscall.unlink(staging)
                throw error
            }
            if fd >= 0 { try? Syscall.close(fd) }
            fd = newFD
        } catch {
            throw FlowCheckpointFileError(path: path, reason: "cannot write: \(error)")
        }
        fileBytes = snapshot.count
        snapshotBytes = snapshot.count
    }
}

/// A checkpoint file that could not be read or written; the message names the file.
public struct FlowCheckpointFileError: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "flow checkpoint \(path): \(reason)" }
}
