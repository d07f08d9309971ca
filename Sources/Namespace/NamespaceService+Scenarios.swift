/// Preferences per scenario (SMP draft §3.2.1, §6.2): named rankings, each in force during its
/// daily time window or when a device chooses it; resolution by UID uses the ranking in force
/// (`Scenario.rankingInForce`). Edits carry the editing device's time and follow the
/// last-writer-wins rule per scenario name and for the choice, like every other field.
extension NamespaceService {
    /// Defines (or replaces) scenario `name`, or deletes it when `scenario` is nil.
    public func setScenario(_ name: String, to scenario: Scenario?, by did: DeviceID, atMillis: Int64) async throws {
        let name = try Scenario.validatedName(name)
        if let scenario { try Self.checkRanking(scenario.ranking, by: did) }
        let clock = self.clock
        try await store.transaction { tx in
            let now = clock()
            try Self.checkEditTime(atMillis, now: now)
            let group = try await Self.requireGroup(did.user, in: tx)
            _ = try await Self.requireDevice(did, in: tx)
            for ranked in scenario?.ranking ?? [] where try await tx.device(ranked) == nil {
                throw NamespaceError.notFound("scenario \(name) names \(ranked), which is not a registered device")
            }
            if scenario == nil, try await tx.scenarios(of: did.user)[name]?.scenario == nil {
                throw NamespaceError.notFound("scenario \(name) does not exist")
            }
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.scenario(name, scenario), by: did, at: atMillis, recorded: recorded, group: group, in: tx)
        }
    }

    /// Chooses the scenario in force for the user (nil: the time windows decide again).
    public func chooseScenario(_ name: String?, by did: DeviceID, atMillis: Int64) async throws {
        let name = try name.map { try Scenario.validatedName($0) }
        let clock = self.clock
        try await store.transaction { tx in
            let now = clock()
            try Self.checkEditTime(atMillis, now: now)
            let group = try await Self.requireGroup(did.user, in: tx)
            _ = try await Self.requireDevice(did, in: tx)
            if let name, try await tx.scenarios(of: did.user)[name]?.scenario == nil {
                throw NamespaceError.notFound("scenario \(name) does not exist (define it first)")
            }
            let recorded = try await Self.bump(group, now: now, in: tx)
            try await Self.record(.activeScenario(name), by: did, at: atMillis, recorded: recorded, group: group, in: tx)
        }
    }

    /// The user's scenarios, the chosen one, and which is in force now with its ranking.
    public func scenarios(of user: UserID) async throws -> ScenarioState {
        let now = clock()
        return try await store.read { tx in
            let group = try await Self.requireGroup(user, reading: true, in: tx)
            return try await Self.scenarioState(group, at: now, in: tx)
        }
    }

    static func scenarioState(_ group: StoredGroup, at now: Int64, in tx: any NamespaceTransaction) async throws -> ScenarioState {
        let scenarios = try await tx.scenarios(of: group.user).compactMapValues(\.scenario)
        let (inForce, ranking) = Scenario.rankingInForce(scenarios: scenarios, active: group.activeScenario,
                                                         fallback: group.preferences, atMillis: now)
        return ScenarioState(scenarios: scenarios, active: group.activeScenario, inForce: inForce, ranking: ranking)
    }

    /// Every DID a device of the editor's own user, once.
    static func checkRanking(_ ranking: [DeviceID], by did: DeviceID) throws {
        var seen = Set<DeviceID>()
        for ranked in ranking {
            guard ranked.user == did.user else {
                throw NamespaceError.forbidden("ranking names \(ranked), a device of another user: \(did) may rank only \(did.user)'s devices")
            }
            guard seen.insert(ranked).inserted else { throw NamespaceError.invalid("ranking names \(ranked) twice") }
        }
    }
}

/// A user's scenarios as resolution sees them.
public struct ScenarioState: Codable, Sendable, Equatable {
    public var scenarios: [String: Scenario]
    /// The scenario a device chose (nil: by time windows).
    public var active: String?
    /// The scenario in force now (nil: none; the plain ranking applies).
    public var inForce: String?
    /// The ranking in force now, best first.
    public var ranking: [DeviceID]

    public init(scenarios: [String: Scenario], active: String?, inForce: String?, ranking: [DeviceID]) {
        self.scenarios = scenarios; self.active = active; self.inForce = inForce; self.ranking = ranking
    }
}
