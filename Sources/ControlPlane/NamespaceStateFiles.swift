#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// The modes of the namespace's files (issue 10, finding 5: an existing state directory with
/// mode 755 was kept, `ns.db*` were 644). The state directory holds the CA key and the admin
/// credential; the database holds every user's devices and locators. Both are for the service's
/// own user only: the directory 0700, the files 0600.
///
/// Choice: an existing directory or file with a looser mode is tightened, with a notice naming
/// its old mode, rather than refused. The service owns these paths and a looser mode is never
/// what anyone meant (an old tsmp wrote them so); refusing would only make every upgrade a
/// manual `chmod`.
enum NamespaceStateFiles {
    static let directoryMode: mode_t = 0o700
    static let fileMode: mode_t = 0o600

    /// Creates `path` (and its parents) with mode 0700, or tightens an existing directory to it.
    static func prepareDirectory(_ path: String, logger: Logger) throws(NamespaceServer.Failure) {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw failure(path, "cannot inspect", errno) }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: Int(directoryMode)])
            } catch {
                throw NamespaceServer.Failure(description: "state directory \(path): cannot create (\(error.localizedDescription))")
            }
            // The attribute is applied through the umask on some paths: make sure.
            guard chmod(path, directoryMode) == 0 else { throw failure(path, "cannot set mode 0700 on", errno) }
            return
        }
        guard info.st_mode & 0o170000 == 0o040000 else {  // S_IFMT, S_IFDIR
            throw NamespaceServer.Failure(description: "state directory \(path): exists and is not a directory")
        }
        try tighten(path, to: directoryMode, what: "state directory", logger: logger)
    }

    /// Creates the SQLite database file `path` empty with mode 0600 when it is missing (SQLite
    /// then opens it as a new database, and gives its -wal and -shm files the same mode); tightens
    /// an existing one and its -wal and -shm files to 0600.
    static func prepareSQLiteFile(_ path: String, logger: Logger) throws(NamespaceServer.Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, fileMode)
        if fd >= 0 {
            _ = fchmod(fd, fileMode)
            close(fd)
        } else if errno != EEXIST {
            throw failure(path, "cannot create the database file", errno)
        }
        try tightenFiles([path, path + "-wal", path + "-shm"], logger: logger)
    }

    /// Tightens each of `paths` that exists to mode 0600.
    static func tightenFiles(_ paths: [String], logger: Logger) throws(NamespaceServer.Failure) {
        for path in paths where FileManager.default.fileExists(atPath: path) {
            try tighten(path, to: fileMode, what: "state file", logger: logger)
        }
    }

    /// Clears the group and other bits of `path`'s mode when any is set; a notice says so.
    private static func tighten(_ path: String, to mode: mode_t, what: String, logger: Logger) throws(NamespaceServer.Failure) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw failure(path, "cannot inspect", errno) }
        let old = info.st_mode & 0o7777
        guard old & ~mode != 0 else { return }
        guard chmod(path, mode) == 0 else { throw failure(path, "cannot set mode \(octal(mode)) on", errno) }
        logger.notice("\(what) was readable by others: mode tightened", metadata: [
            "path": "\(path)", "mode.old": "\(octal(old))", "mode.new": "\(octal(mode))"])
    }

    private static func octal(_ mode: mode_t) -> String { "0" + String(mode, radix: 8) }

    private static func failure(_ path: String, _ doing: String, _ code: Int32) -> NamespaceServer.Failure {
        NamespaceServer.Failure(description: "\(path): \(doing) (\(String(cString: strerror(code))))")
    }
}
