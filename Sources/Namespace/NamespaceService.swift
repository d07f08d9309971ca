import Logging

/// The namespace service (TSMPS; SMP draft §6.2): registration, introduction, heartbeats and
/// their sync, missed-heartbeat expiry, locator updates, preferences and resolution (SRR).
///
/// Rules, kept the same way by every operation:
/// - Every mutation is one store transaction: a refused or failed one changes nothing. Reads
///   run without one (`NamespaceStore.read`).
/// - A group's state is its change log applied in (`timeMillis`, `seq`) order, last writer wins
///   per field (a device's status, locator and display name, the user's ranking). A removal is
///   final (the name is retired), so it needs no order. Each stored field
///   keeps the stamp of the entry that set it, so an entry that arrives late with an older time
///   is logged but does not overwrite a newer value: concurrent edits converge in time order,
///   whatever order they arrive in, here and in every `NamespaceReplica`.
/// - Status and preference edits carry the device's own clock (at most
///   `maximumClockAheadMillis` ahead of the service's). What the service observes itself
///   (heartbeat online, expiry offline, a new locator) is stamped with its clock, but never
///   older than the value it replaces, so an observation always takes effect.
/// - Every change bumps the group's modification time (strictly increasing, recorded in each
///   entry as `recordedMillis`): heartbeats compare it with the device's to decide on a sync.
///
/// All errors thrown are `NamespaceError`s.
public actor NamespaceService {
    public nonisolated let store: any NamespaceStore
    nonisolated let clock: @Sendable () -> Int64
    /// How often devices heartbeat.
    public nonisolated let heartbeatIntervalMillis: Int64
    /// How many heartbeats a device may miss before `sweep` marks it offline.
    public nonisolated let missedHeartbeats: Int
    nonisolated let logger: Logger

    /// How far ahead of the service's clock a device's edit time may be.
    public static let maximumClockAheadMillis: Int64 = 300_000

    /// `heartbeatIntervalMillis` below 1 counts as 1, `missedHeartbeats` below 1 as 1.
    public init(store: any NamespaceStore, clock: @escaping @Sendable () -> Int64,
                heartbeatIntervalMillis: Int64 = 10_000, missedHeartbeats: Int = 3,
                logger: Logger = Logger(label: "tsmp.namespace")) {
        self.store = store
        self.clock = clock
        self.heartbeatIntervalMillis = max(1, heartbeatIntervalMillis)
        self.missedHeartbeats = max(1, missedHeartbeats)
        self.logger = logger
    }

    /// How long a device may stay silent before it counts as offline.
    public nonisolated var expiryMillis: Int64 {
        let (product, overflow) = heartbeatIntervalMillis.multipliedReportingOverflow(by: Int64(missedHeartbeats))
        return overflow ? Int64.max : product
    }

    public func proxyExists(_ name: String) async throws -> Bool {
        let name = try DeviceID.validatedName(name, what: "proxy name")
        return try await store.read { tx in try await tx.proxyExists(name) }
    }

    public func deviceExists(_ did: DeviceID) async throws -> Bool {
        try await store.read { tx in try await tx.device(did) != nil }
    }

    // MARK: Heartbeat and mobility (SMP draft §6.2.3, §6.2.4)

    /// Records a heartbeat: the device is online (unless it said busy or away), its locator is
    /// `locator` when given, and the answer tells what changed in its group since
    /// `knownModificationMillis` (see `HeartbeatAnswer`).
    public func heartbeat(from did: DeviceID, knownModificationMillis known: Int64?, locator: Locator?) async throws -> HeartbeatAnswer {
        let clock = self.clock
        let (answer, changed) = try await store.transaction { tx in
            let group = try await Self.requireGroup(did.user, in: tx)
            let device = try await Self.requireDevice(did, in: tx)
            let now = clock()
            var pending: [(Change, Int64)] = []
            if device.record.status == .offline {
                pending.append((.status(.online), max(now, device.statusStamp?.timeMillis ?? now)))
            }
            if let locator, locator != device.record.locator {
                pending.append((.locator(locator), max(now, device.locatorStamp?.timeMillis ?? now)))
            }
            var latest = group.modificationMillis
            if !pending.isEmpty {
                latest = try await Self.bump(group, now: now, in: tx)
                for (change, time) in pending {
                    try await Self.record(change, by: did, at: time, recorded: latest, device: device, in: tx)
                }
            }
            try await tx.setLastHeartbeat(of: did, to: now)
            let asking = try await tx.introductions(of: did.user, incoming: true)
            let introductions = asking.isEmpty ? nil : asking
            if known == latest {
                return (HeartbeatAnswer(latestModificationMillis: latest, statusChanges: [], sync: nil, introductions: introductions), pending)
            }
            // Behind: what was recorded after its time. Unknown or ahead (a time this group never
            // had, e.g. a restored database): everything.
            let since = known.flatMap { $0 < latest ? $0 : nil }
            let entries = try await tx.changes(of: did.user, recordedAfter: since)
            let statuses = entries.filter { if case .status = $0.change { return true } else { return false } }
            return (HeartbeatAnswer(latestModificationMillis: latest, statusChanges: statuses, sync: entries,
                                    introductions: introductions), pending)
        }
        for (change, _) in changed {
            logger.debug("heartbeat changed the device", metadata: ["device": "\(did)", "change": "\(change)"])
        }
        return answer
    }

    /// The device's address changed (SMP draft §6.2.4). No entry when it is the same.
    public func updateLocator(of did: DeviceID, to locator: Locator) async throws {
        let clock = self.clock
        try await store.transaction { tx in
            let group = try await Self.requireGroup(did.user, in: tx)
            let device = try await Self.requireDevice(did, in: tx)
            guard device.record.locator != locator else { return }
            let now = clock()
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.locator(locator), by: did, at: max(now, device.locatorStamp?.timeMillis ?? now),
                                  recorded: recorded, device: device, in: tx)
        }
    }

    /// Marks offline every device not offline whose last heartbeat (or registration) is older than
    /// `heartbeatIntervalMillis * missedHeartbeats`; returns them.
    public func sweep() async throws -> [DeviceID] {
        let clock = self.clock, expiry = expiryMillis
        let expired = try await store.transaction { tx in
            let now = clock()
            let (cutoff, overflow) = now.subtractingReportingOverflow(expiry)
            if overflow { return [DeviceID]() }
            let silent = try await tx.devicesSilent(before: cutoff)
            var expired: [DeviceID] = []
            for user in Set(silent.map(\.record.did.user)).sorted() {
                let group = try await Self.requireGroup(user, in: tx)
                // Read again under the group's lock: another gateway may have heard from it since.
                var stale: [StoredDevice] = []
                for candidate in silent where candidate.record.did.user == user {
                    if let device = try await tx.device(candidate.record.did),
                       device.record.status != .offline, device.lastSeenMillis < cutoff {
                        stale.append(device)
                    }
                }
                guard !stale.isEmpty else { continue }
                let recorded = try await Self.bump(group, now: now, in: tx)
                for device in stale {
                    try await Self.record(.status(.offline), by: device.record.did,
                                          at: max(now, device.statusStamp?.timeMillis ?? now), recorded: recorded,
                                          device: device, in: tx)
                    expired.append(device.record.did)
                }
            }
            return expired
        }
        for did in expired {
            logger.info("device offline: missed heartbeats", metadata: ["device": "\(did)", "missed": "\(missedHeartbeats)"])
        }
        return expired
    }

    // MARK: Edits carrying the device's time

    /// The device says it is `status` (online, busy, away; offline when it signs off) as of
    /// `atMillis` on its own clock.
    public func setStatus(of did: DeviceID, to status: DeviceStatus, atMillis: Int64) async throws {
        let clock = self.clock
        try await store.transaction { tx in
            let now = clock()
            try Self.checkEditTime(atMillis, now: now)
            let group = try await Self.requireGroup(did.user, in: tx)
            let device = try await Self.requireDevice(did, in: tx)
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.status(status), by: did, at: atMillis, recorded: recorded, device: device, in: tx)
        }
    }

    /// Sets the user's device ranking, best first, as of `atMillis` on the editing device's
    /// clock. Every DID must be a device of the editor's own user, once.
    public func setPreferences(by did: DeviceID, ranking: [DeviceID], atMillis: Int64) async throws {
        try Self.checkRanking(ranking, by: did)
        let clock = self.clock
        try await store.transaction { tx in
            let now = clock()
            try Self.checkEditTime(atMillis, now: now)
            let group = try await Self.requireGroup(did.user, in: tx)
            _ = try await Self.requireDevice(did, in: tx)
            for ranked in ranking where try await tx.device(ranked) == nil {
                throw NamespaceError.notFound("ranking names \(ranked), which is not a registered device")
            }
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.preferences(ranking), by: did, at: atMillis, recorded: recorded, group: group, in: tx)
        }
    }

    // MARK: Reading and resolution (SRR)

    /// The user's devices, by name.
    public func devices(of user: UserID) async throws -> [DeviceRecord] {
        try await store.read { tx in
            _ = try await Self.requireGroup(user, reading: true, in: tx)
            return try await tx.devices(of: user).map(\.record)
        }
    }

    /// The user's device ranking, best first.
    public func preferences(of user: UserID) async throws -> [DeviceID] {
        try await store.read { tx in try await Self.requireGroup(user, reading: true, in: tx).preferences }
    }

    /// The group's latest modification time.
    public func latestModificationMillis(of user: UserID) async throws -> Int64 {
        try await store.read { tx in try await Self.requireGroup(user, reading: true, in: tx).modificationMillis }
    }

    /// Where a device is.
    /// A removed device is not found, and the reason says it was removed.
    public func resolve(_ did: DeviceID) async throws -> Resolution {
        try await store.read { tx in
            guard let record = try await tx.device(did)?.record else {
                throw NamespaceError.notFound(try await Self.absence(of: did, in: tx))
            }
            return Resolution(did: record.did, status: record.status, locator: record.locator)
        }
    }

    /// The user's online devices (busy, away and offline ones left out), best first: ranked ones
    /// in the order of the ranking in force (the chosen scenario, else the one whose time window
    /// holds now, else the plain ranking: `Scenario.rankingInForce`), then the others by name.
    public func resolve(user: UserID) async throws -> [Resolution] {
        let now = clock()
        return try await store.read { tx in
            let group = try await Self.requireGroup(user, reading: true, in: tx)
            let ranking = try await Self.scenarioState(group, at: now, in: tx).ranking
            let rank = Dictionary(ranking.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            return try await tx.devices(of: user)
                .map(\.record)
                .filter { $0.status == .online }
                .sorted { a, b in
                    switch (rank[a.did], rank[b.did]) {
                    case let (x?, y?): return x < y
                    case (.some, nil): return true
                    case (nil, .some): return false
                    case (nil, nil): return a.did.name < b.did.name
                    }
                }
                .map { Resolution(did: $0.did, status: $0.status, locator: $0.locator) }
        }
    }

    /// The device whose locator is this address (the one that moved there last, when several
    /// did), or nil.
    public func device(atAddress address: String) async throws -> DeviceID? {
        guard let canonical = Locator.canonicalAddress(address) else {
            throw NamespaceError.invalid("address \"\(address)\": not an IPv4 or IPv6 address literal")
        }
        return try await store.read { tx in try await tx.devices(atAddress: canonical).first?.record.did }
    }

    /// The user's change-log entries recorded after `sinceMillis` (all when nil), in log order.
    public func changes(of user: UserID, sinceMillis: Int64?) async throws -> [ChangeEntry] {
        try await store.read { tx in
            _ = try await Self.requireGroup(user, reading: true, in: tx)
            return try await tx.changes(of: user, recordedAfter: sinceMillis)
        }
    }

    // MARK: The rules, inside a transaction

    /// Appends `change` to the log and applies it to the stored state when it is the newest
    /// write of its field by (time, seq): the last-writer-wins rule of `NamespaceReplica` too.
    /// `device` and `group`: their state as read earlier in this transaction, if it was (saves a read).
    @discardableResult
    static func record(_ change: Change, by did: DeviceID, at time: Int64, recorded: Int64,
                       device known: StoredDevice? = nil, group knownGroup: StoredGroup? = nil,
                       in tx: any NamespaceTransaction) async throws -> ChangeEntry {
        let entry = try await tx.appendChange(to: did.user, device: did, timeMillis: time, recordedMillis: recorded, change: change)
        func current() async throws -> StoredDevice {
            if let known, known.record.did == did { return known }
            return try await requireDevice(did, in: tx)
        }
        switch change {
        case .deviceAdded:
            try await tx.insertDevice(did, registeredMillis: time)
        case .status(let status):
            if try await current().statusStamp.map({ $0 < entry.stamp }) ?? true {
                try await tx.setStatus(of: did, to: status, stamp: entry.stamp)
            }
        case .locator(let locator):
            if try await current().locatorStamp.map({ $0 < entry.stamp }) ?? true {
                try await tx.setLocator(of: did, to: locator, stamp: entry.stamp)
            }
        case .deviceRemoved:
            break  // the caller deletes the row and keeps the tombstone (`remove(device:by:)`)
        case .contact:
            break  // in another user's log too: `recordContact`
        case .scenario(let name, let scenario):
            if try await tx.scenarios(of: did.user)[name].map({ $0.stamp < entry.stamp }) ?? true {
                try await tx.setScenario(of: did.user, name: name, to: scenario, stamp: entry.stamp)
            }
        case .activeScenario(let name):
            var group = knownGroup
            if group?.user != did.user { group = try await requireGroup(did.user, in: tx) }
            if group?.activeScenarioStamp.map({ $0 < entry.stamp }) ?? true {
                try await tx.setActiveScenario(of: did.user, to: name, stamp: entry.stamp)
            }
        case .deviceRenamed(let label):
            if try await current().labelStamp.map({ $0 < entry.stamp }) ?? true {
                try await tx.setLabel(of: did, to: label, stamp: entry.stamp)
            }
        case .preferences(let ranking):
            var group = knownGroup
            if group?.user != did.user { group = try await requireGroup(did.user, in: tx) }
            if group?.preferencesStamp.map({ $0 < entry.stamp }) ?? true {
                try await tx.setPreferences(of: did.user, to: ranking, stamp: entry.stamp)
            }
        }
        return entry
    }

    /// Moves the group's modification time past its last one (and to `now` when later); returns it.
    static func bump(_ group: StoredGroup, now: Int64, in tx: any NamespaceTransaction) async throws -> Int64 {
        let next = max(group.modificationMillis + 1, now)
        try await tx.setModification(of: group.user, to: next)
        return next
    }

    /// The group; locked for the rest of the transaction unless `reading`.
    static func requireGroup(_ user: UserID, reading: Bool = false, in tx: any NamespaceTransaction) async throws -> StoredGroup {
        guard let group = try await tx.group(user, forUpdate: !reading) else {
            throw NamespaceError.notFound("user \(user) is not registered")
        }
        return group
    }

    static func requireDevice(_ did: DeviceID, in tx: any NamespaceTransaction) async throws -> StoredDevice {
        guard let device = try await tx.device(did) else {
            throw NamespaceError.notFound("device \(did) is not registered")
        }
        return device
    }

    static func checkEditTime(_ time: Int64, now: Int64) throws {
        guard time >= 0 else { throw NamespaceError.invalid("modification time \(time): negative (expected ms since the epoch)") }
        guard time <= now || time - now <= maximumClockAheadMillis else {
            throw NamespaceError.invalid("modification time \(time) is \(time - now) ms ahead of the namespace's clock (at most \(maximumClockAheadMillis)): check the device's clock")
        }
    }
}
