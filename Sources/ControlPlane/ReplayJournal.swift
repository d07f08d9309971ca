#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import PacketIO

/// The request ids a ``RequestGuard`` accepted, on disk, so that a request replayed after the
/// service restarts is still refused (issue 10, finding 5).
///
/// One line per accepted request, `FORGET-AT-MS ID PEER\n`, appended with one `write(2)`
/// and no fsync: the line is in the page cache when the request's handler runs, which
/// survives the process crashing or being restarted. A machine reboot loses what was not
/// written back, but takes longer than the retention (window + skew, 40 s by default), by
/// when every id lost was one nobody can replay any more.
///
/// Two files bound its size: `PATH` (current) and `PATH.previous`. When the current file is
/// older than the retention it becomes the previous one (the older previous is dropped: all
/// its ids had expired by then) and a new current file starts. At start both are read, the
/// unexpired ids kept, and a compacted current file written (atomically); a torn or garbled
/// line is skipped. Files are created 0600. Not thread-safe: the guard calls it under its lock.
final class ReplayJournal {
    struct Entry: Equatable, Sendable {
        var peer: PeerIdentity
        var id: RequestID
        var forgetAt: Int64

        var line: String { "\(forgetAt) \(id) \(peer)\n" }

        init(peer: PeerIdentity, id: RequestID, forgetAt: Int64) {
            self.peer = peer; self.id = id; self.forgetAt = forgetAt
        }

        /// Parses one line (without its newline); nil when it is not a whole entry.
        init?(line: Substring) {
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let forgetAt = Int64(fields[0]), let id = RequestID(hex: String(fields[1])),
                  let peer = try? PeerIdentity(parsing: String(fields[2])) else { return nil }
            self.init(peer: peer, id: id, forgetAt: forgetAt)
        }
    }

    /// What the files held at start.
    struct Loaded {
        var entries: [Entry]
        /// Lines that were not whole entries (a torn last line after a crash, usually).
        var skippedLines: Int
    }

    let path: String
    var previousPath: String { path + ".previous" }
    private let retentionMilliseconds: Int64
    private let logger: Logger
    private var fd: Int32 = -1
    private var startedAt: Int64 = 0
    private var failing = false

    init(path: String, retentionMilliseconds: Int64, logger: Logger) {
        self.path = path
        self.retentionMilliseconds = retentionMilliseconds
        self.logger = logger
    }

    deinit {
        if fd >= 0 { try? Syscall.close(fd) }
    }

    /// Reads the previous and the current file (either may be missing).
    func load() throws(PKIError) -> Loaded {
        var loaded = Loaded(entries: [], skippedLines: 0)
        for file in [previousPath, path] {
            guard FileManager.default.fileExists(atPath: file) else { continue }
            guard let data = FileManager.default.contents(atPath: file) else {
                throw PKIError("replay journal \(file): cannot read (permissions?)")
            }
            let text = String(decoding: data, as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            if !text.hasSuffix("\n"), let torn = lines.popLast(), !torn.isEmpty { loaded.skippedLines += 1 }
            for line in lines {
                if let entry = Entry(line: line) { loaded.entries.append(entry) } else { loaded.skippedLines += 1 }
            }
        }
        return loaded
    }

    /// Replaces both files with one current file holding `live` and opens it for appending.
    func start(with live: [Entry], now: Int64) throws(PKIError) {
        do {
            try FileIO.writeAtomically(live.map(\.line).joined(), to: path, mode: 0o600)
        } catch {
            throw PKIError("replay journal \(path): \(error)")
        }
        if FileManager.default.fileExists(atPath: previousPath) {
            do { try Syscall.unlink(previousPath) } catch { throw PKIError("replay journal: \(error)") }
        }
        do {
            fd = try Self.openForAppend(path, truncate: false)
        } catch {
            throw PKIError("replay journal: \(error)")
        }
        startedAt = now
    }

    /// Appends one accepted id; rotates first when the current file is older than the
    /// retention. A failure is logged (once until writes work again) and the guard goes on
    /// in memory: refusing every request because the disk is full would be worse.
    func append(_ entry: Entry, now: Int64) {
        do {
            if fd < 0 || now - startedAt > retentionMilliseconds { try rotate(now: now) }
            try Syscall.writeAll(fd, Array(entry.line.utf8))
            if failing {
                failing = false
                logger.notice("replay journal writable again", metadata: ["journal.path": "\(path)"])
            }
        } catch {
            if !failing {
                failing = true
                logger.warning("replay journal not written: ids accepted now are forgotten on restart",
                               metadata: ["journal.path": "\(path)", "error": "\(error)"])
            }
        }
    }

    private func rotate(now: Int64) throws(SystemError) {
        if fd >= 0 {
            try? Syscall.close(fd)
            fd = -1
            try Syscall.rename(path, to: previousPath)
        }
        fd = try Self.openForAppend(path, truncate: true)
        startedAt = now
    }

    private static func openForAppend(_ path: String, truncate: Bool) throws(SystemError) -> Int32 {
        let fd = try Syscall.open(path, flags: O_WRONLY | O_APPEND | O_CREAT | (truncate ? O_TRUNC : 0), mode: 0o600)
        do {
            try Syscall.fchmod(fd, mode: 0o600)
        } catch {
            try? Syscall.close(fd)
            throw error
        }
        return fd
    }
}
