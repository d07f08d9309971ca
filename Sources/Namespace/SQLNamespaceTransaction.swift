import Foundation
import SQLKit

/// `NamespaceTransaction` over any SQLKit database (SQLite or PostgreSQL): plain SQL with binds,
/// the same statements on both but for `SQLBackendKind`'s few differences.
struct SQLNamespaceTransaction: NamespaceTransaction {
    let db: any SQLDatabase
    let kind: SQLBackendKind

    // MARK: Groups

    func group(_ user: UserID, forUpdate: Bool) async throws -> StoredGroup? {
        let lock = forUpdate ? kind.forUpdate : ""
        let rows = try await db.raw("""
            SELECT uid, registered_ms, modified_ms, preferences, preferences_ms, preferences_seq
            FROM ns_users WHERE uid = \(bind: user.email)\(unsafeRaw: lock)
            """).all()
        guard let row = rows.first else { return nil }
        let ranking = try Self.decodeJSON([DeviceID].self, try row.decode(column: "preferences", as: String.self), what: "preferences of \(user)")
        return StoredGroup(
            user: user,
            registeredMillis: try row.decode(column: "registered_ms", as: Int64.self),
            modificationMillis: try row.decode(column: "modified_ms", as: Int64.self),
            preferences: ranking,
            preferencesStamp: try Self.stamp(row, "preferences_ms", "preferences_seq"))
    }

    func insertGroup(_ user: UserID, registeredMillis: Int64) async throws {
        try await db.raw("""
            INSERT INTO ns_users (uid, registered_ms, modified_ms, preferences)
            VALUES (\(bind: user.email), \(bind: registeredMillis), \(bind: registeredMillis), '[]')
            """).run()
    }

    func setModification(of user: UserID, to millis: Int64) async throws {
        try await db.raw("UPDATE ns_users SET modified_ms = \(bind: millis) WHERE uid = \(bind: user.email)").run()
    }

    func setPreferences(of user: UserID, to ranking: [DeviceID], stamp: ChangeStamp) async throws {
        try await db.raw("""
            UPDATE ns_users SET preferences = \(bind: try Self.encodeJSON(ranking)),
                preferences_ms = \(bind: stamp.timeMillis), preferences_seq = \(bind: stamp.seq)
            WHERE uid = \(bind: user.email)
            """).run()
    }

    // MARK: Devices

    private static let deviceColumns = """
        uid, name, status, status_ms, status_seq, address, agent_port, locator_ms, locator_seq, heartbeat_ms, registered_ms,
        key_sha256
        """

    func device(_ did: DeviceID) async throws -> StoredDevice? {
        try await db.raw("""
            SELECT \(unsafeRaw: Self.deviceColumns) FROM ns_devices
            WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)
            """).all().first.map(Self.storedDevice)
    }

    func devices(of user: UserID) async throws -> [StoredDevice] {
        try await db.raw("""
            SELECT \(unsafeRaw: Self.deviceColumns) FROM ns_devices WHERE uid = \(bind: user.email) ORDER BY name
            """).all().map(Self.storedDevice)
    }

    func insertDevice(_ did: DeviceID, registeredMillis: Int64) async throws {
        try await db.raw("""
            INSERT INTO ns_devices (uid, name, status, registered_ms)
            VALUES (\(bind: did.user.email), \(bind: did.name), \(bind: DeviceStatus.offline.rawValue), \(bind: registeredMillis))
            """).run()
    }

    func setStatus(of did: DeviceID, to status: DeviceStatus, stamp: ChangeStamp) async throws {
        try await db.raw("""
            UPDATE ns_devices SET status = \(bind: status.rawValue), status_ms = \(bind: stamp.timeMillis), status_seq = \(bind: stamp.seq)
            WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)
            """).run()
    }

    func setLocator(of did: DeviceID, to locator: Locator?, stamp: ChangeStamp) async throws {
        let port: Int64? = locator?.agentPort.map { Int64($0) }
        try await db.raw("""
            UPDATE ns_devices SET address = \(bind: locator?.address), agent_port = \(bind: port),
                locator_ms = \(bind: stamp.timeMillis), locator_seq = \(bind: stamp.seq)
            WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)
            """).run()
    }

    func setLastHeartbeat(of did: DeviceID, to millis: Int64) async throws {
        try await db.raw("""
            UPDATE ns_devices SET heartbeat_ms = \(bind: millis) WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)
            """).run()
    }

    func setKey(of did: DeviceID, to key: KeyFingerprint) async throws {
        try await db.raw("""
            UPDATE ns_devices SET key_sha256 = \(bind: key.hex) WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)
            """).run()
    }

    func firstDevice(of user: UserID) async throws -> DeviceID? {
        let rows = try await db.raw("""
            SELECT uid, device FROM ns_changes WHERE uid = \(bind: user.email) AND kind = \(bind: Change.deviceAdded.kind)
            ORDER BY seq LIMIT 1
            """).all()
        return try rows.first.map { try Self.deviceID($0, name: "device") }
    }

    func devices(atAddress address: String) async throws -> [StoredDevice] {
        try await db.raw("""
            SELECT \(unsafeRaw: Self.deviceColumns) FROM ns_devices WHERE address = \(bind: address)
            ORDER BY locator_ms DESC, locator_seq DESC
            """).all().map(Self.storedDevice)
    }

    func devicesSilent(before millis: Int64) async throws -> [StoredDevice] {
        try await db.raw("""
            SELECT \(unsafeRaw: Self.deviceColumns) FROM ns_devices
            WHERE status <> \(bind: DeviceStatus.offline.rawValue) AND COALESCE(heartbeat_ms, registered_ms) < \(bind: millis)
            ORDER BY uid, name
            """).all().map(Self.storedDevice)
    }

    // MARK: Change log

    func appendChange(device: DeviceID, timeMillis: Int64, recordedMillis: Int64, change: Change) async throws -> ChangeEntry {
        let rows = try await db.raw("""
            INSERT INTO ns_changes (uid, device, time_ms, recorded_ms, kind, payload)
            VALUES (\(bind: device.user.email), \(bind: device.name), \(bind: timeMillis), \(bind: recordedMillis),
                    \(bind: change.kind), \(bind: try Self.encodeJSON(change)))
            RETURNING seq
            """).all()
        guard let seq = try rows.first?.decode(column: "seq", as: Int64.self) else {
            throw NamespaceError.storage("change log: the database returned no sequence number for the new entry")
        }
        return ChangeEntry(seq: seq, device: device, timeMillis: timeMillis, recordedMillis: recordedMillis, change: change)
    }

    func changes(of user: UserID, recordedAfter: Int64?) async throws -> [ChangeEntry] {
        let after = recordedAfter ?? Int64.min
        return try await db.raw("""
            SELECT seq, uid, device, time_ms, recorded_ms, payload FROM ns_changes
            WHERE uid = \(bind: user.email) AND recorded_ms > \(bind: after) ORDER BY seq
            """).all().map { row in
            let seq = try row.decode(column: "seq", as: Int64.self)
            let device = try Self.deviceID(row, name: "device")
            return ChangeEntry(
                seq: seq, device: device,
                timeMillis: try row.decode(column: "time_ms", as: Int64.self),
                recordedMillis: try row.decode(column: "recorded_ms", as: Int64.self),
                change: try Self.decodeJSON(Change.self, try row.decode(column: "payload", as: String.self), what: "change log entry \(seq)"))
        }
    }

    // MARK: Proxies

    func proxyExists(_ name: String) async throws -> Bool {
        try await !db.raw("SELECT name FROM ns_proxies WHERE name = \(bind: name)").all().isEmpty
    }

    func insertProxy(_ name: String, registeredMillis: Int64, key: KeyFingerprint?) async throws {
        try await db.raw("""
            INSERT INTO ns_proxies (name, registered_ms, key_sha256) VALUES (\(bind: name), \(bind: registeredMillis), \(bind: key?.hex))
            """).run()
    }

    func proxyKey(_ name: String) async throws -> KeyFingerprint? {
        let rows = try await db.raw("SELECT key_sha256 FROM ns_proxies WHERE name = \(bind: name)").all()
        guard let row = rows.first, let hex = try Self.optional(row, "key_sha256", String.self) else { return nil }
        do { return try KeyFingerprint(hex: hex) } catch { throw NamespaceError.storage("stored proxy \(name): \(error.description)") }
    }

    // MARK: Rows

    private static func storedDevice(_ row: any SQLRow) throws -> StoredDevice {
        let did = try deviceID(row, name: "name")
        let statusText = try row.decode(column: "status", as: String.self)
        guard let status = DeviceStatus(rawValue: statusText) else {
            throw NamespaceError.storage("stored device \(did): unknown status \"\(statusText)\"")
        }
        var locator: Locator?
        if let address = try optional(row, "address", String.self) {
            let port = try optional(row, "agent_port", Int64.self)
            guard port.map({ UInt16(exactly: $0) != nil }) ?? true else {
                throw NamespaceError.storage("stored device \(did): agent port \(port ?? 0) out of range")
            }
            do { locator = try Locator(address: address, agentPort: port.map { UInt16($0) }) } catch {
                throw NamespaceError.storage("stored device \(did): \(error.description)")
            }
        }
        var key: KeyFingerprint?
        if let hex = try optional(row, "key_sha256", String.self) {
            do { key = try KeyFingerprint(hex: hex) } catch { throw NamespaceError.storage("stored device \(did): \(error.description)") }
        }
        return StoredDevice(
            record: DeviceRecord(
                did: did, status: status, locator: locator,
                lastHeartbeatMillis: try optional(row, "heartbeat_ms", Int64.self),
                registeredMillis: try row.decode(column: "registered_ms", as: Int64.self)),
            statusStamp: try stamp(row, "status_ms", "status_seq"),
            locatorStamp: try stamp(row, "locator_ms", "locator_seq"),
            key: key)
    }

    /// The DID from the row's `uid` and the column holding the device name.
    private static func deviceID(_ row: any SQLRow, name column: String) throws -> DeviceID {
        let uid = try row.decode(column: "uid", as: String.self)
        let name = try row.decode(column: column, as: String.self)
        do { return try DeviceID(name: name, user: try UserID(uid)) } catch {
            throw NamespaceError.storage("stored device \"\(name).\(uid)\" is not a valid DID: \(error.description)")
        }
    }

    private static func stamp(_ row: any SQLRow, _ time: String, _ seq: String) throws -> ChangeStamp? {
        guard let t = try optional(row, time, Int64.self), let s = try optional(row, seq, Int64.self) else { return nil }
        return ChangeStamp(timeMillis: t, seq: s)
    }

    private static func optional<T: Decodable>(_ row: any SQLRow, _ column: String, _ type: T.Type) throws -> T? {
        try row.decodeNil(column: column) ? nil : row.decode(column: column, as: T.self)
    }

    static func encodeJSON<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String, what: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(text.utf8)) } catch {
            throw NamespaceError.storage("stored \(what) is not valid JSON: \(error)")
        }
    }
}
