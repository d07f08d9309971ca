import Foundation
import Logging
@testable import Namespace
import Synchronization
import Testing

/// The two databases the namespace suite runs on.
enum Backend: String, Sendable, CustomStringConvertible {
    case sqlite, postgresql

    var description: String { rawValue }

    /// The PostgreSQL server the tests use (scripts/lib/postgres.sh `pg_start` exports it).
    static let postgresURL: String? = {
        let url = ProcessInfo.processInfo.environment["TSMP_TEST_POSTGRES_URL"] ?? ""
        return url.isEmpty ? nil : url
    }()
}

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let now: Mutex<Int64>

    init(_ start: Int64 = 1_700_000_000_000) { now = Mutex(start) }

    var millis: Int64 { now.withLock { $0 } }
    func advance(by millis: Int64) { now.withLock { $0 += millis } }
    var read: @Sendable () -> Int64 { { self.millis } }
}

/// A private database for one test: an SQLite file in a new temporary directory, or a new
/// schema on the test PostgreSQL server; `url` opens it again (restart), `cleanUp` removes it.
struct NamespaceFixture: Sendable {
    let backend: Backend
    let url: String
    private let directory: String?
    let clock = ManualClock()
    /// Warnings and errors only: the service logs every registration at info.
    static let logger: Logger = {
        var logger = Logger(label: "tsmp.namespace.test")
        logger.logLevel = .warning
        return logger
    }()

    init(_ backend: Backend) throws {
        self.backend = backend
        switch backend {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tsmp-ns-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            self.directory = directory
            url = "sqlite:\(directory)/namespace.sqlite"
        case .postgresql:
            let base = try #require(Backend.postgresURL, "TSMP_TEST_POSTGRES_URL is not set")
            let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            url = base + (base.contains("?") ? "&" : "?") + "schema=\(schema)"
            directory = nil
        }
    }

    func openStore() async throws -> any NamespaceStore {
        try await NamespaceDatabase.open(url, logger: Self.logger)
    }

    func service(_ store: any NamespaceStore, interval: Int64 = 10_000, missed: Int = 3) -> NamespaceService {
        NamespaceService(store: store, clock: clock.read, heartbeatIntervalMillis: interval, missedHeartbeats: missed, logger: Self.logger)
    }

    func cleanUp() async {
        switch backend {
        case .sqlite:
            if let directory { try? FileManager.default.removeItem(atPath: directory) }
        case .postgresql:
            guard let target = try? NamespaceDatabase.target(for: url) else { return }
            let store = SQLNamespaceStore.unmigrated(target, logger: Self.logger)
            do { try await store.dropSchema() } catch { Issue.record("could not drop the test schema: \(error)") }
        }
    }

    /// Runs `body` with a service over a fresh database, then closes and removes it (also when `body` throws).
    static func withService(_ backend: Backend, _ body: (NamespaceFixture, NamespaceService) async throws -> Void) async throws {
        let fixture = try NamespaceFixture(backend)
        do {
            let store = try await fixture.openStore()
            do {
                try await body(fixture, fixture.service(store))
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        } catch {
            await fixture.cleanUp()
            throw error
        }
        await fixture.cleanUp()
    }
}

/// Expects `body` to throw exactly `expected`'s kind of `NamespaceError`; returns its reason.
@discardableResult
func expectRefusal(_ kind: (String) -> NamespaceError, sourceLocation: SourceLocation = #_sourceLocation,
                   _ body: () async throws -> Void) async -> String? {
    do {
        try await body()
        Issue.record("expected \(kind("…")) but it succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as NamespaceError {
        let want = kind(error.description)
        #expect(error == want, "expected \(want) (a \(kind("").caseName) error) but got \(error)", sourceLocation: sourceLocation)
        #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
        return error.description
    } catch {
        Issue.record("expected a NamespaceError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension NamespaceError {
    var caseName: String {
        switch self {
        case .invalid: return "invalid"
        case .notFound: return "notFound"
        case .conflict: return "conflict"
        case .forbidden: return "forbidden"
        case .storage: return "storage"
        }
    }
}

func uid(_ text: String) -> UserID { try! UserID(text) }
func did(_ text: String) -> DeviceID { try! DeviceID(text) }
func locator(_ address: String, port: UInt16? = nil) -> Locator { try! Locator(address: address, agentPort: port) }
