/// A device's copy of its user's group (SMP draft §6.2.3: the SMPA's namespace group): the
/// devices with their status and locator, and the user's ranking, built from change-log entries.
///
/// Entries are applied in (`timeMillis`, `seq`) order, last writer wins per field, and each field
/// remembers the stamp of the entry that set it, so applying the same set of entries in any
/// interleaving, in any batches, even twice, ends in the same replica: the same state as the
/// namespace's (which follows the same rule, see `NamespaceService`).
public struct NamespaceReplica: Sendable, Equatable {
    /// A field's value and the stamp of the entry that set it.
    struct Register<Value: Equatable & Sendable>: Equatable, Sendable {
        var value: Value
        var stamp: ChangeStamp

        /// Keeps the newer of the two writes.
        mutating func offer(_ candidate: Value, stamp candidateStamp: ChangeStamp) {
            if stamp < candidateStamp { value = candidate; stamp = candidateStamp }
        }
    }

    struct DeviceSlot: Equatable, Sendable {
        var registeredMillis: Int64?
        var status: Register<DeviceStatus>?
        var locator: Register<Locator?>?
    }

    public let user: UserID
    /// The newest group modification time seen: send it with the next heartbeat.
    public private(set) var latestModificationMillis: Int64?
    private var slots: [DeviceID: DeviceSlot] = [:]
    private var ranking: Register<[DeviceID]>?

    public init(user: UserID) {
        self.user = user
    }

    /// The group's devices by DID (offline, without locator, until entries say otherwise).
    public var devices: [Resolution] {
        slots.filter { $0.value.registeredMillis != nil }
            .map { did, slot in Resolution(did: did, status: slot.status?.value ?? .offline, locator: slot.locator?.value ?? nil) }
            .sorted { $0.did < $1.did }
    }

    /// The user's device ranking, best first.
    public var preferences: [DeviceID] { ranking?.value ?? [] }

    /// The online devices, best first: the same order as `NamespaceService.resolve(user:)`.
    public var onlineDevices: [Resolution] {
        let rank = Dictionary(preferences.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return devices.filter { $0.status == .online }.sorted { a, b in
            switch (rank[a.did], rank[b.did]) {
            case let (x?, y?): return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.did.name < b.did.name
            }
        }
    }

    /// Applies entries of this user's group (others are ignored) in (time, seq) order.
    public mutating func apply(_ entries: [ChangeEntry]) {
        for entry in entries.sorted(by: { $0.stamp < $1.stamp }) where entry.device.user == user {
            latestModificationMillis = max(latestModificationMillis ?? entry.recordedMillis, entry.recordedMillis)
            var slot = slots[entry.device] ?? DeviceSlot()
            switch entry.change {
            case .deviceAdded:
                slot.registeredMillis = min(slot.registeredMillis ?? entry.timeMillis, entry.timeMillis)
            case .status(let status):
                if slot.status == nil { slot.status = Register(value: status, stamp: entry.stamp) }
                slot.status?.offer(status, stamp: entry.stamp)
            case .locator(let locator):
                if slot.locator == nil { slot.locator = Register(value: locator, stamp: entry.stamp) }
                slot.locator?.offer(locator, stamp: entry.stamp)
            case .preferences(let order):
                if ranking == nil { ranking = Register(value: order, stamp: entry.stamp) }
                ranking?.offer(order, stamp: entry.stamp)
            }
            slots[entry.device] = slot
        }
    }

    /// Applies a heartbeat's answer and takes its modification time as the replica's.
    public mutating func apply(_ answer: HeartbeatAnswer) {
        apply(answer.statusChanges)
        if let sync = answer.sync { apply(sync) }
        latestModificationMillis = answer.latestModificationMillis
    }
}
