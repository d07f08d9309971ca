import SQLKit

/// The store's tables, created and migrated when a store opens. `ns_schema` holds the version;
/// each migration moves the schema one version up, in the same transaction as the version update.
///
/// - `ns_users`: one row per user (group): its modification time, its device ranking (JSON
///   array of DIDs) and the change-log entry (time, seq) that set it.
/// - `ns_devices`: one row per device, keyed by (uid, name): status and locator, each with the
///   (time, seq) of the change-log entry that set it, last heartbeat, registration time.
/// - `ns_proxies`: registered proxies.
/// - `ns_changes`: the change log; `payload` is the JSON of `Change`.
///
/// Version 2 adds `ns_devices.key_sha256` and `ns_proxies.key_sha256`: the SHA-256 of the
/// public key each was certified for (`KeyFingerprint`; NULL for those registered before it),
/// which makes a repeated registration with the same key answerable.
///
/// Version 3 (device lifecycle): `ns_devices.label` with the (time, seq) of the entry that set
/// it (the owner's display name; the DID stays), and `ns_removed_devices`, the tombstones of
/// removed devices (their names stay retired: a removed device's old certificate can never
/// name a live device).
enum SQLSchema {
    /// The version this code writes and understands.
    static let currentVersion = 3

    static func migrations(_ kind: SQLBackendKind) -> [[String]] {
        let int = kind.integer
        return [
            // 0 -> 1
            [
                """
                CREATE TABLE ns_users (uid TEXT PRIMARY KEY, registered_ms \(int) NOT NULL, modified_ms \(int) NOT NULL,
                    preferences TEXT NOT NULL, preferences_ms \(int), preferences_seq \(int))
                """,
                """
                CREATE TABLE ns_devices (uid TEXT NOT NULL REFERENCES ns_users (uid), name TEXT NOT NULL,
                    status TEXT NOT NULL, status_ms \(int), status_seq \(int),
                    address TEXT, agent_port \(int), locator_ms \(int), locator_seq \(int),
                    heartbeat_ms \(int), registered_ms \(int) NOT NULL, PRIMARY KEY (uid, name))
                """,
                "CREATE INDEX ns_devices_address ON ns_devices (address)",
                "CREATE TABLE ns_proxies (name TEXT PRIMARY KEY, registered_ms \(int) NOT NULL)",
                """
                CREATE TABLE ns_changes (seq \(kind.serialPrimaryKey), uid TEXT NOT NULL REFERENCES ns_users (uid),
                    device TEXT NOT NULL, time_ms \(int) NOT NULL, recorded_ms \(int) NOT NULL,
                    kind TEXT NOT NULL, payload TEXT NOT NULL)
                """,
                "CREATE INDEX ns_changes_group ON ns_changes (uid, recorded_ms)",
            ],
            // 1 -> 2: the key each device was certified for (SQLite and PostgreSQL alike add a
            // nullable column without rewriting the table).
            [
                "ALTER TABLE ns_devices ADD COLUMN key_sha256 TEXT",
                "ALTER TABLE ns_proxies ADD COLUMN key_sha256 TEXT",
            ],
            // 2 -> 3: device labels and removed devices.
            [
                "ALTER TABLE ns_devices ADD COLUMN label TEXT",
                "ALTER TABLE ns_devices ADD COLUMN label_ms \(int)",
                "ALTER TABLE ns_devices ADD COLUMN label_seq \(int)",
                """
                CREATE TABLE ns_removed_devices (uid TEXT NOT NULL REFERENCES ns_users (uid), name TEXT NOT NULL,
                    removed_ms \(int) NOT NULL, removed_by TEXT NOT NULL, PRIMARY KEY (uid, name))
                """,
                """
                CREATE TABLE ns_introductions (id \(kind.serialPrimaryKey), from_uid TEXT NOT NULL REFERENCES ns_users (uid),
                    from_device TEXT NOT NULL, to_uid TEXT NOT NULL REFERENCES ns_users (uid), name TEXT NOT NULL,
                    created_ms \(int) NOT NULL)
                """,
                "CREATE UNIQUE INDEX ns_introductions_pair ON ns_introductions (from_uid, to_uid)",
                "CREATE INDEX ns_introductions_to ON ns_introductions (to_uid)",
                """
                CREATE TABLE ns_contacts (uid TEXT NOT NULL REFERENCES ns_users (uid), contact_uid TEXT NOT NULL REFERENCES ns_users (uid),
                    name TEXT NOT NULL, name_ms \(int) NOT NULL, name_seq \(int) NOT NULL, PRIMARY KEY (uid, contact_uid))
                """,
                """
                CREATE TABLE ns_scenarios (uid TEXT NOT NULL REFERENCES ns_users (uid), name TEXT NOT NULL, scenario TEXT,
                    set_ms \(int) NOT NULL, set_seq \(int) NOT NULL, PRIMARY KEY (uid, name))
                """,
                "ALTER TABLE ns_users ADD COLUMN active_scenario TEXT",
                "ALTER TABLE ns_users ADD COLUMN active_ms \(int)",
                "ALTER TABLE ns_users ADD COLUMN active_seq \(int)",
            ],
        ]
    }

    /// Creates or migrates the schema; call inside a transaction. Refuses a database written by a
    /// newer version rather than guessing.
    static func migrate(_ db: any SQLDatabase, kind: SQLBackendKind) async throws -> (from: Int, to: Int) {
        if kind == .postgresql {
            // Two gateways opening a new database at once: one creates, the other waits and sees it.
            try await db.raw("SELECT pg_advisory_xact_lock(\(literal: 0x7473_6d70))").run()
        }
        try await db.raw("CREATE TABLE IF NOT EXISTS ns_schema (version \(unsafeRaw: kind.integer) NOT NULL)").run()
        let rows = try await db.raw("SELECT version FROM ns_schema").all()
        let version = try rows.first.map { try Int($0.decode(column: "version", as: Int64.self)) } ?? 0
        guard version <= currentVersion else {
            throw NamespaceError.storage("database schema version \(version) is newer than this tsmp understands (\(currentVersion)): upgrade tsmp")
        }
        if version == currentVersion { return (version, version) }
        for step in migrations(kind)[version...] {
            for statement in step {
                try await db.raw(SQLQueryString(statement)).run()
            }
        }
        if rows.isEmpty {
            try await db.raw("INSERT INTO ns_schema (version) VALUES (\(bind: Int64(currentVersion)))").run()
        } else {
            try await db.raw("UPDATE ns_schema SET version = \(bind: Int64(currentVersion))").run()
        }
        return (version, currentVersion)
    }
}
