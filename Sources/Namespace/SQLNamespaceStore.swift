import Logging
import PostgresKit
import SQLiteKit
import Synchronization

/// The one `NamespaceStore`: SQLKit over a single connection to SQLite or PostgreSQL.
///
/// One connection, one transaction at a time (`TransactionGate`), which is what SQLite allows
/// anyway and keeps PostgreSQL's load bounded; several gateways sharing one PostgreSQL database
/// are kept apart by the database's row locks (`StoredGroup` is read `FOR UPDATE` before a
/// group changes). A PostgreSQL connection that the server closed is opened again at the next
/// transaction.
final class SQLNamespaceStore: NamespaceStore {
    /// How to (re)open the connection.
    enum Target: Sendable {
        case sqlite(SQLiteConnection.Storage, description: String)
        case postgresql(PostgresConnection.Configuration, schema: String?, description: String)

        var kind: SQLBackendKind {
            switch self {
            case .sqlite: return .sqlite
            case .postgresql: return .postgresql
            }
        }

        /// Where the data lives, without credentials.
        var description: String {
            switch self {
            case .sqlite(_, let description), .postgresql(_, _, let description): return description
            }
        }
    }

    private enum Connection: Sendable {
        case sqlite(SQLiteConnection)
        case postgresql(PostgresConnection)

        var isClosed: Bool {
            switch self {
            case .sqlite: return false
            case .postgresql(let connection): return connection.isClosed
            }
        }

        func sql(_ logger: Logger) -> any SQLDatabase {
            switch self {
            case .sqlite(let connection): return connection.sql(queryLogLevel: .trace)
            case .postgresql(let connection): return connection.sql(queryLogLevel: .trace)
            }
        }

        func close() async {
            switch self {
            case .sqlite(let connection): try? await connection.close()
            case .postgresql(let connection): try? await connection.close()
            }
        }
    }

    let target: Target
    private let logger: Logger
    private let gate = TransactionGate()
    /// The open connection; read and replaced only while holding the gate.
    private let connection = Mutex<Connection?>(nil)
    private let closed = Mutex(false)

    private init(target: Target, logger: Logger) {
        self.target = target
        self.logger = logger
    }

    /// A store that connects at its first transaction and leaves the schema as it finds it.
    static func unmigrated(_ target: Target, logger: Logger) -> SQLNamespaceStore {
        SQLNamespaceStore(target: target, logger: logger)
    }

    /// Opens the connection and creates or migrates the schema.
    static func open(_ target: Target, logger: Logger) async throws(NamespaceError) -> SQLNamespaceStore {
        let store = SQLNamespaceStore(target: target, logger: logger)
        do {
            let migrated = try await store.sqlTransaction { db in
                try await SQLSchema.migrate(db, kind: target.kind)
            }
            if migrated.from != migrated.to {
                logger.info("namespace database schema created or migrated", metadata: [
                    "db": "\(target.description)", "schema.from": "\(migrated.from)", "schema.to": "\(migrated.to)"])
            }
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    func transaction<R: Sendable>(_ body: @escaping @Sendable (any NamespaceTransaction) async throws -> R) async throws(NamespaceError) -> R {
        let kind = target.kind
        return try await sqlTransaction { db in try await body(SQLNamespaceTransaction(db: db, kind: kind)) }
    }

    func read<R: Sendable>(_ body: @escaping @Sendable (any NamespaceTransaction) async throws -> R) async throws(NamespaceError) -> R {
        let kind = target.kind
        do {
            return try await gate.withGate {
                try await body(SQLNamespaceTransaction(db: try await self.openConnection().sql(self.logger), kind: kind))
            }
        } catch {
            throw SQLErrorText.namespaceError(error, database: target.description)
        }
    }

    /// Runs `body` on the connection between BEGIN and COMMIT (ROLLBACK when it throws), holding the gate.
    func sqlTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws(NamespaceError) -> R {
        do {
            return try await gate.withGate {
                let db = try await self.openConnection().sql(self.logger)
                try await db.raw(SQLQueryString(self.target.kind.begin)).run()
                do {
                    let result = try await body(db)
                    try await db.raw("COMMIT").run()
                    return result
                } catch {
                    do { try await db.raw("ROLLBACK").run() } catch {
                        self.logger.debug("namespace database: rollback failed", metadata: ["error": "\(SQLErrorText.describe(error))"])
                    }
                    throw error
                }
            }
        } catch {
            throw SQLErrorText.namespaceError(error, database: target.description)
        }
    }

    func close() async {
        let already = closed.withLock { value in
            defer { value = true }
            return value
        }
        if already { return }
        try? await gate.withGate {
            let open = self.connection.withLock { value in
                defer { value = nil }
                return value
            }
            await open?.close()
        }
    }

    /// Drops the PostgreSQL schema the store was opened with, and everything in it (tests
    /// clean up their private schema with it); then closes the store.
    func dropSchema() async throws {
        guard case .postgresql(_, let schema?, _) = target else { return }
        try await sqlTransaction { db in try await db.raw("DROP SCHEMA \(ident: schema) CASCADE").run() }
        await close()
    }

    /// The connection, opened (again) when there is none or the server closed it. Holding the gate.
    private func openConnection() async throws -> Connection {
        if closed.withLock({ $0 }) {
            throw NamespaceError.storage("namespace database \(target.description): the store is closed")
        }
        if let open = connection.withLock({ $0 }), !open.isClosed { return open }
        let fresh: Connection
        switch target {
        case .sqlite(let storage, _):
            let sqlite = try await SQLiteConnection.open(storage: storage, logger: logger)
            fresh = .sqlite(sqlite)
            let db = sqlite.sql()
            do {
                if case .file = storage {
                    // WAL: readers don't block the writer; NORMAL sync is durable across a crash of
                    // the process (not of the machine's power), the usual pairing with WAL.
                    try await db.raw("PRAGMA journal_mode = WAL").run()
                    try await db.raw("PRAGMA synchronous = NORMAL").run()
                }
                try await db.raw("PRAGMA foreign_keys = ON").run()
                try await db.raw("PRAGMA busy_timeout = 5000").run()
            } catch {
                await fresh.close()
                throw error
            }
        case .postgresql(let configuration, let schema, _):
            let postgres = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            fresh = .postgresql(postgres)
            if let schema {
                do {
                    let db = postgres.sql()
                    try await db.raw("CREATE SCHEMA IF NOT EXISTS \(ident: schema)").run()
                    try await db.raw("SET search_path TO \(ident: schema)").run()
                } catch {
                    await fresh.close()
                    throw error
                }
            }
        }
        connection.withLock { $0 = fresh }
        return fresh
    }
}
