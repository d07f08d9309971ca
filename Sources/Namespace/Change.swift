/// One modification of a user's group, as the change log records it (SMP draft §6.2.3).
///
/// JSON: `{"kind": "deviceAdded"}`, `{"kind": "status", "status": "busy"}`,
/// `{"kind": "locator", "locator": {"address": "10.0.0.2", "agentPort": 7000}}` (or
/// `"locator": null`), `{"kind": "preferences", "ranking": ["phone.bob@example.com"]}`.
public enum Change: Codable, Sendable, Equatable {
    /// The entry's device joined the group (registration or introduction).
    case deviceAdded
    /// The entry's device changed status.
    case status(DeviceStatus)
    /// The entry's device changed address (nil: it has none any more).
    case locator(Locator?)
    /// The entry's device set the user's device ranking, best first.
    case preferences([DeviceID])

    /// The `kind` field of the JSON form.
    public var kind: String {
        switch self {
        case .deviceAdded: return "deviceAdded"
        case .status: return "status"
        case .locator: return "locator"
        case .preferences: return "preferences"
        }
    }

    private enum CodingKeys: String, CodingKey { case kind, status, locator, ranking }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch kind {
        case "deviceAdded": self = .deviceAdded
        case "status": self = .status(try container.decode(DeviceStatus.self, forKey: .status))
        case "locator": self = .locator(try container.decodeIfPresent(Locator.self, forKey: .locator))
        case "preferences": self = .preferences(try container.decode([DeviceID].self, forKey: .ranking))
        default:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container,
                debugDescription: "change kind \"\(kind)\": expected deviceAdded, status, locator or preferences")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        switch self {
        case .deviceAdded: break
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

    public init(latestModificationMillis: Int64, statusChanges: [ChangeEntry], sync: [ChangeEntry]?) {
        self.latestModificationMillis = latestModificationMillis
        self.statusChanges = statusChanges
        self.sync = sync
    }
}
