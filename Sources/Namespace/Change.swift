/// One modification of a user's group, as the change log records it (SMP draft §6.2.3).
///
/// JSON: `{"kind": "deviceAdded"}`, `{"kind": "status", "status": "busy"}`,
/// `{"kind": "locator", "locator": {"address": "10.0.0.2", "agentPort": 7000}}` (or
/// `"locator": null`), `{"kind": "preferences", "ranking": ["phone.bob@example.com"]}`,
/// `{"kind": "deviceRemoved"}`, `{"kind": "deviceRenamed", "label": "Bob's phone"}`,
/// `{"kind": "contact", "user": "alice@example.com", "label": "Alice"}` (`"label": null`: removed),
/// `{"kind": "scenario", "label": "day", "scenario": {"ranking": [...], "window": {...}}}`
/// (`"scenario": null`: deleted), `{"kind": "activeScenario", "label": "home"}` (null: by time).
public enum Change: Codable, Sendable, Equatable {
    /// The entry's device joined the group (registration or introduction).
    case deviceAdded
    /// The entry's device changed status.
    case status(DeviceStatus)
    /// The entry's device changed address (nil: it has none any more).
    case locator(Locator?)
    /// The entry's device set the user's device ranking, best first.
    case preferences([DeviceID])
    /// The entry's device left the group for good (its owner removed it): its credential no
    /// longer works and its name is retired (never certified again), so the removal is final
    /// and needs no ordering against the device's other entries.
    case deviceRemoved
    /// The owner gave the entry's device another display name; its DID does not change.
    case deviceRenamed(String)
    /// The group's owner holds `user` as a contact (a friend, SMP draft §6.2.2) under the name
    /// the owner chose; nil: no longer. Last writer wins per contact. In the other user's log
    /// the entry's device may be a device of the user who acted (who removed the friendship).
    case contact(UserID, name: String?)
    /// The entry's device defined (or replaced) the user's scenario of this name; nil: deleted.
    case scenario(String, Scenario?)
    /// The entry's device chose the scenario in force for the user; nil: by time windows again.
    case activeScenario(String?)

    /// The `kind` field of the JSON form.
    public var kind: String {
        switch self {
        case .deviceAdded: return "deviceAdded"
        case .status: return "status"
        case .locator: return "locator"
        case .preferences: return "preferences"
        case .deviceRemoved: return "deviceRemoved"
        case .deviceRenamed: return "deviceRenamed"
        case .contact: return "contact"
        case .scenario: return "scenario"
        case .activeScenario: return "activeScenario"
        }
    }

    private enum CodingKeys: String, CodingKey { case kind, status, locator, ranking, label, user, scenario }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch kind {
        case "deviceAdded": self = .deviceAdded
        case "status": self = .status(try container.decode(DeviceStatus.self, forKey: .status))
        case "locator": self = .locator(try container.decodeIfPresent(Locator.self, forKey: .locator))
        case "preferences": self = .preferences(try container.decode([DeviceID].self, forKey: .ranking))
        case "deviceRemoved": self = .deviceRemoved
        case "deviceRenamed": self = .deviceRenamed(try container.decode(String.self, forKey: .label))
        case "scenario":
            self = .scenario(try container.decode(String.self, forKey: .label), try container.decodeIfPresent(Scenario.self, forKey: .scenario))
        case "activeScenario": self = .activeScenario(try container.decodeIfPresent(String.self, forKey: .label))
        case "contact":
            self = .contact(try container.decode(UserID.self, forKey: .user), name: try container.decodeIfPresent(String.self, forKey: .label))
        default:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container,
                debugDescription: "change kind \"\(kind)\": expected deviceAdded, status, locator, preferences, deviceRemoved, deviceRenamed, contact, scenario or activeScenario")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        switch self {
        case .deviceAdded, .deviceRemoved: break
        case .deviceRenamed(let label): try container.encode(label, forKey: .label)
        case .scenario(let name, let scenario):
            try container.encode(name, forKey: .label)
            try container.encode(scenario, forKey: .scenario)
        case .activeScenario(let name): try container.encode(name, forKey: .label)
        case .contact(let user, let name):
            try container.encode(user, forKey: .user)
            try container.encode(name, forKey: .label)
        case .status(let status): try container.encode(status, forKey: .status)
        case .locator(let locator): try container.encode(locator, forKey: .locator)
        case .preferences(let ranking): try container.encode(ranking, forKey: .ranking)
        }
    }
}

/// One entry of a group's change log.
///
/// Two clocks: `timeMillis` is when the change happened (the editing device's own clock for
/// status and preference edits, the namespace's for what it observes itself) and orders the
/// entries when they are applied: the group's state is the log applied in (`timeMillis`, `seq`)
/// order, last writer wins. `recordedMillis` is the group's modification time when the namespace
/// stored the entry; it only grows, so a device that knows the group up to modification time T
/// needs exactly the entries recorded after T, even those whose `timeMillis` is older.
public struct ChangeEntry: Codable, Sendable, Equatable {
    /// The log's sequence number: unique, increasing in the order the namespace stored entries.
    public var seq: Int64
    /// The device that changed (or, for preferences, the device that edited the ranking).
    public var device: DeviceID
    /// When the change happened.
    public var timeMillis: Int64
    /// The group's modification time at which the namespace recorded it.
    public var recordedMillis: Int64
    public var change: Change

    public init(seq: Int64, device: DeviceID, timeMillis: Int64, recordedMillis: Int64, change: Change) {
        self.seq = seq
        self.device = device
        self.timeMillis = timeMillis
        self.recordedMillis = recordedMillis
        self.change = change
    }

    /// The position of the entry in application order.
    public var stamp: ChangeStamp { ChangeStamp(timeMillis: timeMillis, seq: seq) }
}

/// The order in which change entries are applied: by time, ties broken by sequence number.
public struct ChangeStamp: Comparable, Hashable, Codable, Sendable {
    public var timeMillis: Int64
    public var seq: Int64

    public init(timeMillis: Int64, seq: Int64) {
        self.timeMillis = timeMillis
        self.seq = seq
    }

    public static func < (a: ChangeStamp, b: ChangeStamp) -> Bool {
        (a.timeMillis, a.seq) < (b.timeMillis, b.seq)
    }
}

/// The namespace's answer to a heartbeat (SMP draft §6.2.3).
public struct HeartbeatAnswer: Codable, Sendable, Equatable {
    /// The group's modification time after this heartbeat: the device sends it with its next one.
    public var latestModificationMillis: Int64
    /// Status changes in the device's group recorded after the device's known modification time.
    public var statusChanges: [ChangeEntry]
    /// Every change-log entry recorded after the device's known modification time, or all of them
    /// when it knew none or one the namespace never had; nil when the device is up to date.
    public var sync: [ChangeEntry]?
    /// Requests of other users to become this user's contact, pending (SMP draft §6.2.2: they
    /// reach every device of the user this way until one confirms or declines); nil when none.
    public var introductions: [Introduction]?

    public init(latestModificationMillis: Int64, statusChanges: [ChangeEntry], sync: [ChangeEntry]?,
                introductions: [Introduction]? = nil) {
        self.latestModificationMillis = latestModificationMillis
        self.statusChanges = statusChanges
        self.sync = sync
        self.introductions = introductions
    }
}
