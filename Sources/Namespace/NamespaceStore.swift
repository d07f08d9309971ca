/// Durable storage of the namespace: groups (users), devices, proxies and the change log.
///
/// The store only stores; the rules (who may do what, what a heartbeat changes, last writer
/// wins) are `NamespaceService`'s. Every service operation runs in one `transaction`, so a
/// mutation is stored whole or not at all, and transactions of one store never interleave.
public protocol NamespaceStore: Sendable {
    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    /// Errors other than `NamespaceError` come out as `.storage` (or `.conflict` for a unique
    /// key that another writer took first).
    func transaction<R: Sendable>(_ body: @escaping @Sendable (any NamespaceTransaction) async throws -> R) async throws -> R
    /// Runs read-only `body` without an explicit transaction (each statement sees the latest
    /// committed state; one round trip less on each side). Errors as for `transaction`.
    func read<R: Sendable>(_ body: @escaping @Sendable (any NamespaceTransaction) async throws -> R) async throws -> R
    /// Closes the connection; the store cannot be used afterwards.
    func close() async
}

/// The operations a transaction offers; see `NamespaceStore.transaction`.
public protocol NamespaceTransaction: Sendable {
    /// The user's group, locked against concurrent writers until the end of the transaction when
    /// `forUpdate` is set (PostgreSQL `FOR UPDATE`; SQLite transactions are exclusive anyway).
    func group(_ user: UserID, forUpdate: Bool) async throws -> StoredGroup?
    func insertGroup(_ user: UserID, registeredMillis: Int64) async throws
    func setModification(of user: UserID, to millis: Int64) async throws
    func setPreferences(of user: UserID, to ranking: [DeviceID], stamp: ChangeStamp) async throws
    func setActiveScenario(of user: UserID, to name: String?, stamp: ChangeStamp) async throws
    /// The user's scenarios by name, deleted ones (nil) included, each with the entry that set it.
    func scenarios(of user: UserID) async throws -> [String: (scenario: Scenario?, stamp: ChangeStamp)]
    func setScenario(of user: UserID, name: String, to scenario: Scenario?, stamp: ChangeStamp) async throws

    func device(_ did: DeviceID) async throws -> StoredDevice?
    /// The user's devices, by name.
    func devices(of user: UserID) async throws -> [StoredDevice]
    /// Inserts a device as offline, without locator or heartbeat.
    func insertDevice(_ did: DeviceID, registeredMillis: Int64) async throws
    func setStatus(of did: DeviceID, to status: DeviceStatus, stamp: ChangeStamp) async throws
    func setLocator(of did: DeviceID, to locator: Locator?, stamp: ChangeStamp) async throws
    func setLastHeartbeat(of did: DeviceID, to millis: Int64) async throws
    /// Remembers the key the device was certified for.
    func setKey(of did: DeviceID, to key: KeyFingerprint) async throws
    func setLabel(of did: DeviceID, to label: String?, stamp: ChangeStamp) async throws
    /// Deletes the device and keeps a tombstone: its name stays retired (`removal(of:)`).
    func removeDevice(_ did: DeviceID, removedMillis: Int64, by remover: DeviceID) async throws
    /// When and by whom the device was removed; nil when it never was.
    func removal(of did: DeviceID) async throws -> DeviceRemoval?
    /// The device the user registered with: the first one added to the group's log.
    func firstDevice(of user: UserID) async throws -> DeviceID?
    /// Devices whose locator has this (canonical) address, the most recently moved there first.
    func devices(atAddress address: String) async throws -> [StoredDevice]
    /// Devices not offline whose last heartbeat (or registration, before any) is older than `millis`.
    func devicesSilent(before millis: Int64) async throws -> [StoredDevice]

    /// Appends an entry to the change log of `user` (the device's own user but for contact
    /// entries a user of another group caused); the store assigns `seq`.
    func appendChange(to user: UserID, device: DeviceID, timeMillis: Int64, recordedMillis: Int64, change: Change) async throws -> ChangeEntry
    /// The user's change-log entries recorded after `recordedAfter` (all when nil), by `seq`.
    func changes(of user: UserID, recordedAfter: Int64?) async throws -> [ChangeEntry]

    // Friends (SMP draft §6.2.2)
    /// Stores a pending request of `from`'s user to become `to`'s contact; the store assigns the id.
    func insertIntroduction(from: DeviceID, to: UserID, name: String, createdMillis: Int64) async throws -> Introduction
    func introduction(_ id: Int64) async throws -> Introduction?
    /// The pending request of `from` to `to`, if any.
    func introduction(from: UserID, to: UserID) async throws -> Introduction?
    /// Pending requests addressed to `user` (`incoming`) or made by it, oldest first.
    func introductions(of user: UserID, incoming: Bool) async throws -> [Introduction]
    func deleteIntroduction(_ id: Int64) async throws
    func contact(of user: UserID, _ contact: UserID) async throws -> StoredContact?
    /// The user's contacts, by UID.
    func contacts(of user: UserID) async throws -> [StoredContact]
    /// Sets the owner's name for the contact (inserting it), or deletes it when `name` is nil.
    func setContact(of user: UserID, _ contact: UserID, name: String?, stamp: ChangeStamp) async throws

    func proxyExists(_ name: String) async throws -> Bool
    func insertProxy(_ name: String, registeredMillis: Int64, key: KeyFingerprint?) async throws
    /// The key the proxy was certified for (nil: unknown proxy, or registered before keys were kept).
    func proxyKey(_ name: String) async throws -> KeyFingerprint?
}

/// A user's group as stored.
public struct StoredGroup: Sendable, Equatable {
    public var user: UserID
    public var registeredMillis: Int64
    /// The group's latest modification time (`ChangeEntry.recordedMillis` of its newest entries).
    public var modificationMillis: Int64
    /// The user's device ranking, best first.
    public var preferences: [DeviceID]
    /// The change-log entry that set `preferences` (nil: never set).
    public var preferencesStamp: ChangeStamp?
    /// The scenario a device chose (nil: the time windows decide).
    public var activeScenario: String?
    public var activeScenarioStamp: ChangeStamp?

    public init(user: UserID, registeredMillis: Int64, modificationMillis: Int64, preferences: [DeviceID], preferencesStamp: ChangeStamp?,
                activeScenario: String? = nil, activeScenarioStamp: ChangeStamp? = nil) {
        self.user = user
        self.registeredMillis = registeredMillis
        self.modificationMillis = modificationMillis
        self.preferences = preferences
        self.preferencesStamp = preferencesStamp
        self.activeScenario = activeScenario
        self.activeScenarioStamp = activeScenarioStamp
    }
}

/// A device as stored: its record and the change-log entries that set its status and locator.
public struct StoredDevice: Sendable, Equatable {
    public var record: DeviceRecord
    public var statusStamp: ChangeStamp?
    public var locatorStamp: ChangeStamp?
    /// The public key the device was certified for (nil: registered before keys were kept).
    public var key: KeyFingerprint?
    /// The change-log entry that set `record.label` (nil: never set).
    public var labelStamp: ChangeStamp?

    public init(record: DeviceRecord, statusStamp: ChangeStamp?, locatorStamp: ChangeStamp?, key: KeyFingerprint? = nil,
                labelStamp: ChangeStamp? = nil) {
        self.record = record
        self.statusStamp = statusStamp
        self.locatorStamp = locatorStamp
        self.key = key
        self.labelStamp = labelStamp
    }

    /// When the device last showed a sign of life: its last heartbeat, or its registration.
    public var lastSeenMillis: Int64 { record.lastHeartbeatMillis ?? record.registeredMillis }
}

/// The tombstone of a removed device: its name is never certified again in its group, so a
/// certificate issued to it before can never name a live device.
public struct DeviceRemoval: Sendable, Equatable, Codable {
    public var did: DeviceID
    public var removedMillis: Int64
    /// The device of the same user that removed it (itself, when it left on its own).
    public var by: DeviceID

    public init(did: DeviceID, removedMillis: Int64, by: DeviceID) {
        self.did = did
        self.removedMillis = removedMillis
        self.by = by
    }
}

/// A pending request of one user to become another's contact (SMP draft §6.2.2, centralized
/// coordination): it reaches every device of `to` in heartbeat answers until one confirms it.
public struct Introduction: Sendable, Equatable, Codable {
    public var id: Int64
    /// The device that asked; its user is the one to become a contact.
    public var from: DeviceID
    public var to: UserID
    /// The name the asking user gave the other (the asker's contact name for it).
    public var name: String
    public var createdMillis: Int64

    public init(id: Int64, from: DeviceID, to: UserID, name: String, createdMillis: Int64) {
        self.id = id; self.from = from; self.to = to; self.name = name; self.createdMillis = createdMillis
    }
}

/// One of a user's contacts as stored: the owner's name for it and the entry that set it.
public struct StoredContact: Sendable, Equatable {
    public var user: UserID
    public var name: String
    public var stamp: ChangeStamp

    public init(user: UserID, name: String, stamp: ChangeStamp) {
        self.user = user; self.name = name; self.stamp = stamp
    }
}
