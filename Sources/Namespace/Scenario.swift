/// A named device ranking for one situation of the user's day (SMP draft §3.2.1, §6.2: "the
/// ranking of preferred device(s) by the user for different scenarios"), e.g. `day`, `home`,
/// `commute`, in force during its time window or when a device chooses it explicitly.
public struct Scenario: Codable, Sendable, Equatable {
    /// The user's devices, best first.
    public var ranking: [DeviceID]
    /// When it is in force by itself; nil: only when chosen explicitly.
    public var window: TimeWindow?

    public init(ranking: [DeviceID], window: TimeWindow?) {
        self.ranking = ranking
        self.window = window
    }

    /// Scenario names: the device-name grammar (`[a-z0-9][a-z0-9-]{0,62}`).
    public static func validatedName(_ name: String) throws(NamespaceError) -> String {
        try DeviceID.validatedName(name, what: "scenario name")
    }

    /// The ranking in force at `millis` (ms since the epoch): the explicitly chosen scenario when
    /// there is one, else the first scenario by name whose window holds that time of day, else
    /// `fallback` (the user's plain ranking). Also says which scenario it is (nil: none).
    public static func rankingInForce(scenarios: [String: Scenario], active: String?, fallback: [DeviceID],
                                      atMillis millis: Int64) -> (scenario: String?, ranking: [DeviceID]) {
        if let active, let chosen = scenarios[active] { return (active, chosen.ranking) }
        let minute = Int((millis / 60_000) % 1440 + (millis < 0 ? 1440 : 0)) % 1440
        for name in scenarios.keys.sorted() {
            if let scenario = scenarios[name], let window = scenario.window, window.contains(minuteOfDay: minute) {
                return (name, scenario.ranking)
            }
        }
        return (nil, fallback)
    }
}

/// A daily time window in UTC minutes of the day, `[fromMinute, toMinute)`; it wraps past
/// midnight when `toMinute` < `fromMinute` (22:00-06:00). Text form `HH:MM-HH:MM`.
public struct TimeWindow: Codable, Sendable, Equatable, CustomStringConvertible {
    public var fromMinute: Int
    public var toMinute: Int

    public init(fromMinute: Int, toMinute: Int) throws(NamespaceError) {
        guard (0..<1440).contains(fromMinute), (0...1440).contains(toMinute), fromMinute != toMinute else {
            throw .invalid("time window \(fromMinute)-\(toMinute): minutes of the day, 0-1439 and 1-1440, not equal")
        }
        self.fromMinute = fromMinute
        self.toMinute = toMinute
    }

    /// Parses `HH:MM-HH:MM` (UTC).
    public init(parsing text: String) throws(NamespaceError) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let from = Self.minute(parts[0]), let to = Self.minute(parts[1]) else {
            throw .invalid("time window \"\(text)\": expected HH:MM-HH:MM (UTC), e.g. 08:00-18:00")
        }
        try self.init(fromMinute: from, toMinute: to)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(fromMinute: try container.decode(Int.self, forKey: .fromMinute), toMinute: try container.decode(Int.self, forKey: .toMinute))
    }

    private enum CodingKeys: String, CodingKey { case fromMinute, toMinute }

    public func contains(minuteOfDay m: Int) -> Bool {
        fromMinute < toMinute ? (m >= fromMinute && m < toMinute) : (m >= fromMinute || m < toMinute)
    }

    public var description: String { "\(Self.text(fromMinute))-\(Self.text(toMinute))" }

    private static func minute(_ text: Substring) -> Int? {
        let hm = text.split(separator: ":")
        guard hm.count == 2, hm[0].count == 2, hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]),
              (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else { return nil }
        return h * 60 + m
    }

    private static func text(_ minute: Int) -> String {
        let h = minute / 60, m = minute % 60
        return (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
    }
}
