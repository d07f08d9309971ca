import ControlPlane
import Foundation
import Logging
import Synchronization
import Testing

/// The modes of `namespace serve`'s files (issue 10, finding 5: a 0755 state directory was kept,
/// `ns.db*` were 0644), and the database opened before the CA and admin credential are written
/// (issue 17). The server runs for real on loopback; the test process keeps its usual umask
/// (022), so the modes come from the server, not from `tsmp namespace serve`'s umask.
@Suite("Namespace state files")
struct NamespaceStateFilesTests {
    /// Every message logged, with its metadata, for checking the notices.
    final class LogRecord: Sendable {
        let lines = Mutex<[String]>([])
        var logger: Logger {
            Logger(label: "test") { _ in Handler(record: self) }
        }
        struct Handler: LogHandler {
            let record: LogRecord
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                record.lines.withLock { $0.append("\(event.level) \(event.message) \(fields)") }
            }
        }
    }

    static let stateFiles = ["ns.db", "ns.db-wal", "ns.db-shm", "ca.key", "admin.cred"]

    /// Runs the server on `dir` until it serves, then returns the modes of the directory and the files.
    static func serve(_ dir: TempDirectory, database: String? = nil, logger: Logger) async throws -> [String: Int] {
        let options = NamespaceServer.Options(database: database ?? "sqlite:\(dir.file("ns.db"))", host: "127.0.0.1", port: 0,
                                              stateDirectory: dir.path, advertisedURL: "https://127.0.0.1:1", insecureLab: false)
        let modes = Mutex<[String: Int]>([:])
        try await NamespaceServer(options: options, logger: logger).run {
            var seen = [".": (try? dir.mode(".")) ?? -1]
            for name in stateFiles { seen[name] = (try? dir.mode(name)) ?? -1 }
            modes.withLock { $0 = seen }
        }
        return modes.withLock { $0 }
    }

    @Test("a 0755 state directory ends 0700, the database, its -wal/-shm, the CA key and the admin credential 0600; looser ones are tightened with a notice")
    func modes() async throws {
        let dir = try TempDirectory()
        #expect(chmod(dir.path, 0o755) == 0)
        let log = LogRecord()
        let first = try await Self.serve(dir, logger: log.logger)
        #expect(first["."] == 0o700)
        for name in Self.stateFiles { #expect(first[name] == 0o600, "\(name): \(String(first[name] ?? -1, radix: 8))") }
        #expect(log.lines.withLock { $0 }.contains { $0.contains("mode tightened") && $0.contains("mode.old=0755") })

        // An older tsmp left everything readable: the next start tightens it all, naming the old modes.
        #expect(chmod(dir.path, 0o755) == 0)
        for name in ["ns.db", "ca.key", "admin.cred"] { #expect(chmod(dir.file(name), 0o644) == 0) }
        let again = LogRecord()
        let second = try await Self.serve(dir, logger: again.logger)
        #expect(second["."] == 0o700)
        for name in Self.stateFiles { #expect(second[name] == 0o600, "\(name): \(String(second[name] ?? -1, radix: 8))") }
        let notices = again.lines.withLock { $0 }.filter { $0.contains("mode tightened") && $0.contains("mode.old=0644") }
        for name in ["ns.db", "ca.key", "admin.cred"] {
            #expect(notices.contains { $0.contains("path=\(dir.file(name)) ") || $0.hasSuffix("path=\(dir.file(name))") }, "\(notices)")
        }
    }

    @Test("an unusable database is found before anything else is written: no CA, no admin credential")
    func databaseFirst() async throws {
        let dir = try TempDirectory()
        let log = LogRecord()
        // Nothing listens on port 1 of loopback: the connection is refused at once.
        await #expect(throws: NamespaceServer.Failure.self) {
            _ = try await Self.serve(dir, database: "postgresql://tsmp@127.0.0.1:1/none", logger: log.logger)
        }
        for name in ["ca.key", "ca.pem", "admin.cred"] {
            #expect(!FileManager.default.fileExists(atPath: dir.file(name)), "\(name) was written")
        }
    }
}
