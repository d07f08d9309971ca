import Foundation
import Logging
import Namespace
import NIOCore
import NIOPosix

/// `tsmp namespace serve`: the namespace service (TSMPS) on one address, with its CA and
/// admin credential in a state directory, its data in SQLite or PostgreSQL, and a sweeper
/// that marks devices offline when their heartbeats stop (SMP draft §6.2.3).
public struct NamespaceServer: Sendable {
    public struct Options: Sendable {
        public var database: String
        public var host: String
        public var port: Int
        public var stateDirectory: String
        /// The URL devices and proxies reach the service at (written into credentials).
        public var advertisedURL: String
        public var insecureLab: Bool
        public var heartbeatIntervalMillis: Int64
        public var missedHeartbeats: Int
        /// Which locators devices may set (`--allow-unattributed-locators`: any usable one).
        public var locatorPolicy: LocatorPolicy
        /// Where to serve Prometheus metrics (`--metrics`, plain HTTP, path /metrics); nil: nowhere.
        public var metrics: (host: String, port: Int)?
        public init(database: String, host: String, port: Int, stateDirectory: String, advertisedURL: String,
                    insecureLab: Bool, heartbeatIntervalMillis: Int64 = 10_000, missedHeartbeats: Int = 3,
                    locatorPolicy: LocatorPolicy = .sourceAddress) {
            self.database = database; self.host = host; self.port = port; self.stateDirectory = stateDirectory
            self.advertisedURL = advertisedURL; self.insecureLab = insecureLab
            self.heartbeatIntervalMillis = heartbeatIntervalMillis; self.missedHeartbeats = missedHeartbeats
            self.locatorPolicy = locatorPolicy
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static let adminCredentialFile = "admin.cred"
    /// The request guard's journal in the state directory (``RequestGuard``).
    public static let replayJournalFile = "replay.journal"

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Serves until `stop` returns (a signal, usually); then closes everything it opened.
    public func run(until stop: () async -> Void) async throws {
        // The directory first (0700), then the database, which must be usable before the CA and
        // the admin credential are written: a bad --db leaves no state behind.
        try NamespaceStateFiles.prepareDirectory(options.stateDirectory, logger: logger)
        let store = try await openStore()
        let authority: CertificateAuthority
        let adminPath = (options.stateDirectory as NSString).appendingPathComponent(Self.adminCredentialFile)
        do {
            authority = try loadAuthority(adminPath: adminPath)
        } catch {
            await store.close()
            throw error
        }
        // Accepted request ids, kept across restarts (a request replayed after a restart is refused).
        let journalPath = (options.stateDirectory as NSString).appendingPathComponent(Self.replayJournalFile)
        let requestGuard: RequestGuard
        do {
            requestGuard = try RequestGuard(journalPath: journalPath, logger: logger)
        } catch {
            await store.close()
            throw Failure(description: "\(error)")
        }
        let fileLimit = FileLimit.raise()
        logger.info("\(fileLimit)")
        let clock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
        let service = NamespaceService(store: store, clock: clock, heartbeatIntervalMillis: options.heartbeatIntervalMillis,
                                       missedHeartbeats: options.missedHeartbeats)
        let routes = NamespaceRoutes(service: service, authority: authority, namespaceURL: options.advertisedURL,
                                     locatorPolicy: options.locatorPolicy, clock: clock)
        let security: EndpointSecurity
        do {
            security = options.insecureLab ? .insecureLab
                : .mutualTLS(try ServerTLS(credential: Self.issueLocally(.namespace, by: authority, namespaceURL: options.advertisedURL)))
        } catch {
            await store.close()
            throw Failure(description: "cannot set up TLS: \(error)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let endpoint: HTTPEndpoint
        var metricsEndpoint: HTTPEndpoint?
        let metrics = ServiceMetrics.namespace()
        do {
            endpoint = try await HTTPEndpoint.start(host: options.host, port: options.port, group: group, logger: logger,
                                                    routes: metrics.instrument(routes.routes), security: security,
                                                    requestGuard: requestGuard, limits: .fitting(fileLimit: fileLimit.current))
            do {
                if let m = options.metrics {
                    metricsEndpoint = try await metrics.serve(host: m.host, port: m.port, group: group, logger: logger)
                }
            } catch {
                await endpoint.close()
                throw error
            }
        } catch {
            await store.close()
            try? await group.shutdownGracefully()
            throw Failure(description: "cannot serve on \(error)")
        }
        logger.info("namespace serving", metadata: [
            "listen": "\(options.host):\(options.port)", "url": "\(options.advertisedURL)",
            "db": "\(Self.redacted(options.database))", "tls": "\(options.insecureLab ? "off (--insecure-lab)" : "mutual")",
            "locators": "\(options.locatorPolicy == .sourceAddress ? "the request's source address only" : "any usable (--allow-unattributed-locators)")",
        ])
        let sweeper = Task {
            let period = UInt64(max(options.heartbeatIntervalMillis / 2, 50)) * 1_000_000
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: period)
                // Stopping: the sleep ended early; a sweep now would only be cancelled midway.
                if Task.isCancelled { break }
                do {
                    for did in try await service.sweep() {
                        logger.info("device offline: heartbeats stopped", metadata: ["did": "\(did)"])
                    }
                } catch where Task.isCancelled {
                    break
                } catch {
                    logger.warning("sweep failed", metadata: ["error": "\(error)"])
                }
            }
        }
        await stop()
        sweeper.cancel()
        _ = await sweeper.result
        await endpoint.close()
        await metricsEndpoint?.close()
        try? await group.shutdownGracefully()
        await store.close()
        logger.info("namespace stopped")
    }

    /// The store, its SQLite file (if it is one) made or kept 0600 first.
    private func openStore() async throws -> any NamespaceStore {
        let sqliteFile = NamespaceDatabase.sqliteFilePath(options.database)
        if let sqliteFile { try NamespaceStateFiles.prepareSQLiteFile(sqliteFile, logger: logger) }
        let store: any NamespaceStore
        do {
            store = try await NamespaceDatabase.open(options.database, logger: logger)
        } catch {
            throw Failure(description: "database \(options.database): \(error)")
        }
        // -wal and -shm exist now: SQLite gave them the database file's mode; check all the same.
        if let sqliteFile {
            do { try NamespaceStateFiles.prepareSQLiteFile(sqliteFile, logger: logger) } catch {
                await store.close()
                throw error
            }
        }
        return store
    }

    /// The CA (loaded, or made on first start) and the admin credential (written on first
    /// start); both files 0600.
    private func loadAuthority(adminPath: String) throws -> CertificateAuthority {
        let authority: CertificateAuthority
        do {
            authority = try CertificateAuthority.loadOrCreate(directory: options.stateDirectory)
        } catch {
            throw Failure(description: "state directory \(options.stateDirectory): \(error)")
        }
        if !FileManager.default.fileExists(atPath: adminPath) {
            do {
                try Self.issueLocally(.admin, by: authority, namespaceURL: options.advertisedURL).write(to: adminPath)
                logger.notice("admin credential written", metadata: ["path": "\(adminPath)"])
            } catch {
                throw Failure(description: "cannot write the admin credential \(adminPath): \(error)")
            }
        }
        let keyPath = (options.stateDirectory as NSString).appendingPathComponent(CertificateAuthority.keyFile)
        try NamespaceStateFiles.tightenFiles([keyPath, adminPath], logger: logger)
        return authority
    }

    /// A credential whose key is made here (the admin's and the service's own).
    static func issueLocally(_ identity: PeerIdentity, by authority: CertificateAuthority, namespaceURL: String) throws -> Credential {
        try authority.issueCredential(for: identity, namespaceURL: namespaceURL)
    }

    /// The database URL without its password, for logs.
    public static func redacted(_ url: String) -> String {
        guard let at = url.firstIndex(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at else { return url }
        let userinfo = url[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url }
        return url.replacingCharacters(in: colon..<at, with: ":***")
    }
}
