#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Small file helpers for keys and credentials: atomic writes with a fixed mode, reads with
/// errors that name the file.
enum FileIO {
    /// Writes `bytes` to `path` atomically: a new file with `mode` next to it, fsync, rename.
    /// A reader sees the old file or the new one, never half of one; the mode is set at
    /// creation (no window in which a key is readable by others).
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        let temp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw PKIError("\(path): cannot create (\(String(cString: strerror(errno))))") }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                throw PKIError("\(path): cannot write (\(reason))")
            }
            offset += n
        }
        _ = fchmod(fd, mode)  // O_CREAT's mode is filtered by the umask
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else { throw PKIError("\(path): cannot write (fsync failed)") }
        guard rename(temp, path) == 0 else {
            throw PKIError("\(path): cannot replace (\(String(cString: strerror(errno))))")
        }
        ok = true
    }

    static func writeAtomically(_ text: String, to path: String, mode: mode_t) throws {
        try writeAtomically(Array(text.utf8), to: path, mode: mode)
    }

    /// The file's text; a missing file is `nil`, any other failure throws with the reason.
    static func readIfPresent(_ path: String, what: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try read(path, what: what)
    }

    static func read(_ path: String, what: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw PKIError("\(what) \(path): no such file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PKIError("\(what) \(path): cannot read (permissions?)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw PKIError("\(what) \(path): not text") }
        return text
    }
}
