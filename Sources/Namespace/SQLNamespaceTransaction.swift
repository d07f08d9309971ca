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
            SELECT uid, registered_ms, modified_ms, preferences, preferences_ms, preferences_seq, active_scenario, active_ms, active_seq
            FROM ns_users WHERE uid = \(bind: user.email)\(unsafeRaw: lock)
            """).all()
        guard let row = rows.first else { return nil }
        let ranking = try Self.decodeJSON([DeviceID].self, try row.decode(column: "preferences", as: String.self), what: "preferences of \(user)")
        return StoredGroup(
            user: user,
            registeredMillis: try row.decode(column: "registered_ms", as: Int64.self),
            modificationMillis: try row.decode(column: "modified_ms", as: Int64.self),
            preferences: ranking,
            preferencesStamp: try Self.stamp(row, "preferences_ms", "preferences_seq"),
            activeScenario: try Self.optional(row, "active_scenario", String.self),
            activeScenarioStamp: try Self.stamp(row, "active_ms", "active_seq"))
    }

    func setActiveScenario(of user: UserID, to name: String?, stamp: ChangeStamp) async throws {
        try await db.raw("""
            UPDATE ns_users SET active_scenario = \(bind: name), active_ms = \(bind: stamp.timeMillis), active_seq = \(bind: stamp.seq)
            WHERE uid = \(bind: user.email)
            """).run()
    }

    func scenarios(of user: UserID) async throws -> [String: (scenario: Scenario?, stamp: ChangeStamp)] {
        let rows = try await db.raw("SELECT name, scenario, set_ms, set_seq FROM ns_scenarios WHERE uid = \(bind: user.email)").all()
        var result: [String: (scenario: Scenario?, stamp: ChangeStamp)] = [:]
        for row in rows {
            let name = try row.decode(column: "name", as: String.self)
            let scenario = try Self.optional(row, "scenario", String.self).map {
                try Self.decodeJSON(Scenario.self, $0, what: "scenario \(name) of \(user)")
            }
            result[name] = (scenario, ChangeStamp(timeMillis: try row.decode(column: "set_ms", as: Int64.self),
                                                  seq: try row.decode(column: "set_seq", as: Int64.self)))
        }
        return result
    }

    func setScenario(of user: UserID, name: String, to scenario: Scenario?, stamp: ChangeStamp) async throws {
        try await db.raw("DELETE FROM ns_scenarios WHERE uid = \(bind: user.email) AND name = \(bind: name)").run()
        try await db.raw("""
            INSERT INTO ns_scenarios (uid, name, scenario, set_ms, set_seq)
            VALUES (\(bind: user.email), \(bind: name), \(bind: try scenario.map { try Self.encodeJSON($0) }),
                    \(bind: stamp.timeMillis), \(bind: stamp.seq))
            """).run()
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
        key_sha256, label, label_ms, label_seq
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

    func setLabel(of did: DeviceID, to label: String?, stamp: ChangeStamp) async throws {
        try await db.raw("""
            UPDATE ns_devices SET label = \(bind: label), label_ms = \(bind: stamp.timeMillis), label_seq = \(bind: stamp.seq)
            WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)
            """).run()
    }

    func removeDevice(_ did: DeviceID, removedMillis: Int64, by remover: DeviceID) async throws {
        try await db.raw("DELETE FROM ns_devices WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)").run()
        try await db.raw("""
            INSERT INTO ns_removed_devices (uid, name, removed_ms, removed_by)
            VALUES (\(bind: did.user.email), \(bind: did.name), \(bind: removedMillis), \(bind: remover.name))
            """).run()
    }

    func removal(of did: DeviceID) async throws -> DeviceRemoval? {
        let rows = try await db.raw("""
            SELECT uid, name, removed_ms, removed_by FROM ns_removed_devices
            WHERE uid = \(bind: did.user.email) AND name = \(bind: did.name)
            """).all()
        guard let row = rows.first else { return nil }
        return DeviceRemoval(did: did, removedMillis: try row.decode(column: "removed_ms", as: Int64.self),
                             by: try Self.deviceID(row, name: "removed_by"))
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

    func appendChange(to user: UserID, device: DeviceID, timeMillis: Int64, recordedMillis: Int64, change: Change) async throws -> ChangeEntry {
        // A device of the log's own user by name; another user's device by its full DID.
        let deviceText = device.user == user ? device.name : device.description
        let rows = try await db.raw("""
            INSERT INTO ns_changes (uid, device, time_ms, recorded_ms, kind, payload)
            VALUES (\(bind: user.email), \(bind: deviceText), \(bind: timeMillis), \(bind: recordedMillis),
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

    // MARK: Friends

    private static let introductionColumns = "id, from_uid, from_device, to_uid, name, created_ms"

    func insertIntroduction(from: DeviceID, to: UserID, name: String, createdMillis: Int64) async throws -> Introduction {
        let rows = try await db.raw("""
            INSERT INTO ns_introductions (from_uid, from_device, to_uid, name, created_ms)
            VALUES (\(bind: from.user.email), \(bind: from.description), \(bind: to.email), \(bind: name), \(bind: createdMillis))
            RETURNING id
            """).all()
        guard let id = try rows.first?.decode(column: "id", as: Int64.self) else {
            throw NamespaceError.storage("introductions: the database returned no id for the new request")
        }
        return Introduction(id: id, from: from, to: to, name: name, createdMillis: createdMillis)
    }

    func introduction(_ id: Int64) async throws -> Introduction? {
        try await db.raw("SELECT \(unsafeRaw: Self.introductionColumns) FROM ns_introductions WHERE id = \(bind: id)")
            .all().first.map(Self.introduction)
    }

    func introduction(from: UserID, to: UserID) async throws -> Introduction? {
        try await db.raw("""
            SELECT \(unsafeRaw: Self.introductionColumns) FROM ns_introductions
            WHERE from_uid = \(bind: from.email) AND to_uid = \(bind: to.email)
            """).all().first.map(Self.introduction)
    }

    func introductions(of user: UserID, incoming: Bool) async throws -> [Introduction] {
        let column = incoming ? "to_uid" : "from_uid"
        return try await db.raw("""
            SELECT \(unsafeRaw: Self.introductionColumns) FROM ns_introductions WHERE \(unsafeRaw: column) = \(bind: user.email) ORDER BY id
            """).all().map(Self.introduction)
    }

    func deleteIntroduction(_ id: Int64) async throws {
        try await db.raw("DELETE FROM ns_introductions WHERE id = \(bind: id)").run()
    }

    func contact(of user: UserID, _ contact: UserID) async throws -> StoredContact? {
        try await db.raw("""
            SELECT contact_uid, name, name_ms, name_seq FROM ns_contacts WHERE uid = \(bind: user.email) AND contact_uid = \(bind: contact.email)
            """).all().first.map(Self.storedContact)
    }

    func contacts(of user: UserID) async throws -> [StoredContact] {
        try await db.raw("""
            SELECT contact_uid, name, name_ms, name_seq FROM ns_contacts WHERE uid = \(bind: user.email) ORDER BY contact_uid
            """).all().map(Self.storedContact)
    }

    func setContact(of user: UserID, _ contact: UserID, name: String?, stamp: ChangeStamp) async throws {
        try await db.raw("DELETE FROM ns_contacts WHERE uid = \(bind: user.email) AND contact_uid = \(bind: contact.email)").run()
        guard let name else { return }
        try await db.raw("""
            INSERT INTO ns_contacts (uid, contact_uid, name, name_ms, name_seq)
            VALUES (\(bind: user.email), \(bind: contact.email), \(bind: name), \(bind: stamp.timeMillis), \(bind: stamp.seq))
            """).run()
    }

    private static func introduction(_ row: any SQLRow) throws -> Introduction {
        let id = try row.decode(column: "id", as: Int64.self)
        do {
            return Introduction(id: id, from: try DeviceID(try row.decode(column: "from_device", as: String.self)),
                                to: try UserID(try row.decode(column: "to_uid", as: String.self)),
                                name: try row.decode(column: "name", as: String.self),
                                createdMillis: try row.decode(column: "created_ms", as: Int64.self))
        } catch let error as NamespaceError {
            throw NamespaceError.storage("stored introduction \(id): \(error.description)")
        }
    }

    private static func storedContact(_ row: any SQLRow) throws -> StoredContact {
        let text = try row.decode(column: "contact_uid", as: String.self)
        do {
            return StoredContact(user: try UserID(text), name: try row.decode(column: "name", as: String.self),
                                 stamp: ChangeStamp(timeMillis: try row.decode(column: "name_ms", as: Int64.self),
                                                    seq: try row.decode(column: "name_seq", as: Int64.self)))
        } catch let error as NamespaceError {
            throw NamespaceError.storage("stored contact \(text): \(error.description)")
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
                registeredMillis: try row.decode(column: "registered_ms", as: Int64.self),
                label: try optional(row, "label", String.self)),
            statusStamp: try stamp(row, "status_ms", "status_seq"),
            locatorStamp: try stamp(row, "locator_ms", "locator_seq"),
            key: key,
            labelStamp: try stamp(row, "label_ms", "label_seq"))
    }

    /// The DID from the row's `uid` and the column holding the device name.
    private static func deviceID(_ row: any SQLRow, name column: String) throws -> DeviceID {
        let uid = try row.decode(column: "uid", as: String.self)
        let name = try row.decode(column: column, as: String.self)
        do { return name.contains("@") ? try DeviceID(name) : try DeviceID(name: name, user: try UserID(uid)) } catch {
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
