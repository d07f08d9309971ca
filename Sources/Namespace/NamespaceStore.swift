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
    /// The device the user registered with: the first one added to the group's log.
    func firstDevice(of user: UserID) async throws -> DeviceID?
    /// Devices whose locator has this (canonical) address, the most recently moved there first.
    func devices(atAddress address: String) async throws -> [StoredDevice]
    /// Devices not offline whose last heartbeat (or registration, before any) is older than `millis`.
    func devicesSilent(before millis: Int64) async throws -> [StoredDevice]

    /// Appends an entry to the change log of the device's user; the store assigns `seq`.
    func appendChange(device: DeviceID, timeMillis: Int64, recordedMillis: Int64, change: Change) async throws -> ChangeEntry
    /// The user's change-log entries recorded after `recordedAfter` (all when nil), by `seq`.
    func changes(of user: UserID, recordedAfter: Int64?) async throws -> [ChangeEntry]

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

    public init(user: UserID, registeredMillis: Int64, modificationMillis: Int64, preferences: [DeviceID], preferencesStamp: ChangeStamp?) {
        self.user = user
        self.registeredMillis = registeredMillis
        self.modificationMillis = modificationMillis
        self.preferences = preferences
        self.preferencesStamp = preferencesStamp
    }
}

/// A device as stored: its record and the change-log entries that set its status and locator.
public struct StoredDevice: Sendable, Equatable {
    public var record: DeviceRecord
    public var statusStamp: ChangeStamp?
    public var locatorStamp: ChangeStamp?
    /// The public key the device was certified for (nil: registered before keys were kept).
    public var key: KeyFingerprint?

    public init(record: DeviceRecord, statusStamp: ChangeStamp?, locatorStamp: ChangeStamp?, key: KeyFingerprint? = nil) {
        self.record = record
        self.statusStamp = statusStamp
        self.locatorStamp = locatorStamp
        self.key = key
    }

    /// When the device last showed a sign of life: its last heartbeat, or its registration.
    public var lastSeenMillis: Int64 { record.lastHeartbeatMillis ?? record.registeredMillis }
}
