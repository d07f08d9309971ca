import ControlPlane
import Foundation
import Namespace
import Testing
import TestSupport

/// Preferences per scenario over the API (issue 16, item 3; SMP draft §3.2.1): resolution by
/// UID follows the ranking in force (chosen, else by time window, else plain), skipping busy
/// and offline devices; a device's replica computes the same. Refusals change nothing.
extension NamespaceAPITests {
    static func scenarios(_ database: String) async throws {
        let ns = try await Service(database: database)  // the clock starts at 08:00 UTC
        let laptop = try await ns.register("bob@example.com", device: "laptop")
        let phone = try await ns.introduce("phone", by: laptop)
        let tablet = try await ns.introduce("tablet", by: laptop)
        for (credential, address) in [(laptop, "10.1.0.2"), (phone, "10.3.0.2"), (tablet, "10.4.0.2")] {
            _ = try await ns.heartbeat(credential, address: address)
        }
        let gw = try ns.client(try await ns.proxy("gw1"))
        let did = { (name: String) in try DeviceID("\(name).bob@example.com") }
        func best() async throws -> [String] {
            let list: ResolutionList = try await gw.call("GET", "/v1/resolve", query: ["uid": "bob@example.com"])
            return list.devices.map(\.did.name)
        }
        let _: DeviceList = try await ns.client(laptop).call("PUT", "/v1/preferences", json: PreferencesEdit(
            ranking: [try did("laptop"), try did("phone"), try did("tablet")], atMillis: ns.clock.now))
        #expect(try await best() == ["laptop", "phone", "tablet"])

        // A day scenario by time window: in force at 08:00.
        var state: ScenarioState = try await ns.client(laptop).call("PUT", "/v1/scenarios", json: ScenarioEdit(
            name: "day", scenario: Scenario(ranking: [try did("phone"), try did("laptop")], window: try TimeWindow(parsing: "08:00-18:00")),
            atMillis: ns.clock.now))
        #expect(state.inForce == "day" && state.ranking.map(\.name) == ["phone", "laptop"])
        #expect(try await best() == ["phone", "laptop", "tablet"])
        // Home from 18:00 to 01:00 (past midnight); at 19:00 it is in force.
        state = try await ns.client(phone).call("PUT", "/v1/scenarios", json: ScenarioEdit(
            name: "home", scenario: Scenario(ranking: [try did("tablet"), try did("laptop")], window: try TimeWindow(parsing: "18:00-01:00")),
            atMillis: ns.clock.now))
        ns.advance(11 * 3_600_000)
        #expect(try await best() == ["tablet", "laptop", "phone"])
        // Chosen explicitly by a device: commute wins over the window.
        let _: ScenarioState = try await ns.client(phone).call("PUT", "/v1/scenarios", json: ScenarioEdit(
            name: "commute", scenario: Scenario(ranking: [try did("phone")], window: nil), atMillis: ns.clock.now))
        state = try await ns.client(phone).call("PUT", "/v1/scenarios/active", json: ScenarioChoice(name: "commute", atMillis: ns.clock.now))
        #expect(state.active == "commute" && state.inForce == "commute")
        #expect(try await best() == ["phone", "laptop", "tablet"])
        // Busy devices are skipped.
        let _: Resolution = try await ns.client(phone).call("PUT", "/v1/status", json: StatusEdit(status: .busy, atMillis: ns.clock.now))
        #expect(try await best() == ["laptop", "tablet"])
        // Back to the windows; the replica built from the log agrees at this time.
        state = try await ns.client(laptop).call("PUT", "/v1/scenarios/active", json: ScenarioChoice(name: nil, atMillis: ns.clock.now))
        #expect(state.active == nil && state.inForce == "home")
        var replica = NamespaceReplica(user: try UserID("bob@example.com"))
        replica.apply(try await ns.service.changes(of: try UserID("bob@example.com"), sinceMillis: nil))
        #expect(replica.rankingInForce(atMillis: ns.clock.now).scenario == "home")
        #expect(replica.onlineDevices(atMillis: ns.clock.now).map(\.did.name) == (try await best()))
        #expect(Set(replica.scenarios.keys) == ["day", "home", "commute"])
        await ns.stop()
    }

    static func scenarioRefusals(_ database: String) async throws {
        let ns = try await Service(database: database)
        let laptop = try await ns.register("bob@example.com", device: "laptop")
        _ = try await ns.register("alice@example.com", device: "laptop")
        let _: ScenarioState = try await ns.client(laptop).call("PUT", "/v1/scenarios", json: ScenarioEdit(
            name: "day", scenario: Scenario(ranking: [try DeviceID("laptop.bob@example.com")], window: nil), atMillis: ns.clock.now))
        let before = try await snapshot(ns, "bob@example.com")
        let scenariosBefore = try await ns.service.scenarios(of: try UserID("bob@example.com"))
        func put(_ edit: ScenarioEdit) async throws { let _: ScenarioState = try await ns.client(laptop).call("PUT", "/v1/scenarios", json: edit) }
        await expectRefused(403, "may rank only bob@example.com's devices") {
            try await put(ScenarioEdit(name: "day", scenario: Scenario(ranking: [try DeviceID("laptop.alice@example.com")], window: nil),
                                       atMillis: ns.clock.now))
        }
        await expectRefused(404, "not a registered device") {
            try await put(ScenarioEdit(name: "day", scenario: Scenario(ranking: [try DeviceID("ghost.bob@example.com")], window: nil),
                                       atMillis: ns.clock.now))
        }
        await expectRefused(400, "scenario name") {
            try await put(ScenarioEdit(name: "Day Time", scenario: Scenario(ranking: [], window: nil), atMillis: ns.clock.now))
        }
        await expectRefused(404, "scenario night does not exist") { try await put(ScenarioEdit(name: "night", scenario: nil, atMillis: ns.clock.now)) }
        await expectRefused(404, "scenario gym does not exist") {
            let _: ScenarioState = try await ns.client(laptop).call("PUT", "/v1/scenarios/active", json: ScenarioChoice(name: "gym", atMillis: ns.clock.now))
        }
        let badWindow = try await ns.client(laptop).sendRaw("PUT", "/v1/scenarios", body: Array("""
            {"name": "day", "scenario": {"ranking": [], "window": {"fromMinute": 600, "toMinute": 600}}, "atMillis": \(ns.clock.now)}
            """.utf8))
        #expect(badWindow.status == 400)
        #expect(throws: NamespaceError.self) { try TimeWindow(parsing: "25:00-26:00") }
        #expect(try await snapshot(ns, "bob@example.com") == before)
        #expect(try await ns.service.scenarios(of: try UserID("bob@example.com")) == scenariosBefore)
        await ns.stop()
    }
}
