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
        var label: Register<String>?
        /// Removed for good: the device is gone from the group whatever else arrives.
        var removed = false
    }

    public let user: UserID
    /// The newest group modification time seen: send it with the next heartbeat.
    public private(set) var latestModificationMillis: Int64?
    private var slots: [DeviceID: DeviceSlot] = [:]
    private var ranking: Register<[DeviceID]>?
    private var contactSlots: [UserID: Register<String?>] = [:]
    private var scenarioSlots: [String: Register<Scenario?>] = [:]
    private var active: Register<String?>?
    /// Other users' pending requests to become this user's contact, from the latest heartbeat.
    public private(set) var introductions: [Introduction] = []

    public init(user: UserID) {
        self.user = user
    }

    /// The group's devices by DID (offline, without locator, until entries say otherwise).
    public var devices: [Resolution] {
        slots.filter { $0.value.registeredMillis != nil && !$0.value.removed }
            .map { did, slot in Resolution(did: did, status: slot.status?.value ?? .offline, locator: slot.locator?.value ?? nil) }
            .sorted { $0.did < $1.did }
    }

    /// The display names the owner gave devices, by DID.
    public var labels: [DeviceID: String] {
        slots.compactMapValues { $0.removed ? nil : $0.label?.value }
    }

    /// The user's device ranking, best first.
    public var preferences: [DeviceID] { ranking?.value ?? [] }

    /// The online devices, best first by the plain ranking (no scenario in force).
    public var onlineDevices: [Resolution] { online(rankedBy: preferences) }

    /// The online devices, best first by the ranking in force at `millis`: the same order as
    /// `NamespaceService.resolve(user:)` at that time.
    public func onlineDevices(atMillis millis: Int64) -> [Resolution] { online(rankedBy: rankingInForce(atMillis: millis).ranking) }

    private func online(rankedBy ranking: [DeviceID]) -> [Resolution] {
        let rank = Dictionary(ranking.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        return devices.filter { $0.status == .online }.sorted { a, b in
            switch (rank[a.did], rank[b.did]) {
            case let (x?, y?): return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.did.name < b.did.name
            }
        }
    }

    /// The user's scenarios by name.
    public var scenarios: [String: Scenario] { scenarioSlots.compactMapValues { $0.value } }

    /// The scenario a device chose (nil: by time windows).
    public var activeScenario: String? { active?.value ?? nil }

    /// The ranking in force at `millis`: the same rule as the namespace's resolution.
    public func rankingInForce(atMillis millis: Int64) -> (scenario: String?, ranking: [DeviceID]) {
        Scenario.rankingInForce(scenarios: scenarios, active: activeScenario, fallback: preferences, atMillis: millis)
    }

    /// The user's contacts and the names the user gave them.
    public var contacts: [UserID: String] {
        contactSlots.compactMapValues { $0.value }
    }

    /// Applies entries of this user's group's log in (time, seq) order. A contact entry may name
    /// another user's device (the user who ended the friendship); other entries of devices of
    /// other users are not this group's and are ignored.
    public mutating func apply(_ entries: [ChangeEntry]) {
        for entry in entries.sorted(by: { $0.stamp < $1.stamp }) {
            if case .contact(let other, let name) = entry.change {
                latestModificationMillis = max(latestModificationMillis ?? entry.recordedMillis, entry.recordedMillis)
                if contactSlots[other] == nil { contactSlots[other] = Register(value: name, stamp: entry.stamp) }
                contactSlots[other]?.offer(name, stamp: entry.stamp)
                continue
            }
            guard entry.device.user == user else { continue }
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
            case .deviceRemoved:
                slot.removed = true
            case .contact:
                break  // applied above
            case .scenario(let name, let scenario):
                if scenarioSlots[name] == nil { scenarioSlots[name] = Register(value: scenario, stamp: entry.stamp) }
                scenarioSlots[name]?.offer(scenario, stamp: entry.stamp)
            case .activeScenario(let name):
                if active == nil { active = Register(value: name, stamp: entry.stamp) }
                active?.offer(name, stamp: entry.stamp)
            case .deviceRenamed(let label):
                if slot.label == nil { slot.label = Register(value: label, stamp: entry.stamp) }
                slot.label?.offer(label, stamp: entry.stamp)
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
        introductions = answer.introductions ?? []
        latestModificationMillis = answer.latestModificationMillis
    }
}
