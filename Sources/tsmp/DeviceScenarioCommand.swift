import ArgumentParser
import ControlPlane
import Foundation
import Namespace

/// `tsmp device scenario`: rankings per named scenario (SMP draft §3.2.1).
struct DeviceScenarioCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Rankings per scenario (day, home, commute...): in force in their time window, or when chosen.",
        discussion: """
        Resolution by UID (shares, migrations by user) uses the ranking in force: the chosen \
        scenario, else the first by name whose window (UTC) holds the time of day, else the \
        plain ranking (tsmp device rank). Offline, busy and away devices are skipped.

        Examples:
          tsmp device scenario set day laptop phone --window 08:00-18:00 --credentials laptop.cred
          tsmp device scenario set commute phone --credentials laptop.cred
          tsmp device scenario use commute --credentials phone.cred      # 'auto': by time again
          tsmp device scenario list --credentials phone.cred --json
        """,
        subcommands: [ScenarioListCommand.self, ScenarioSetCommand.self, ScenarioUseCommand.self, ScenarioDeleteCommand.self],
        defaultSubcommand: ScenarioListCommand.self)
}

private func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

private func printScenarios(_ state: ScenarioState) {
    for name in state.scenarios.keys.sorted() {
        guard let s = state.scenarios[name] else { continue }
        let marks = [state.active == name ? "chosen" : nil, state.inForce == name ? "in force" : nil].compactMap { $0 }
        print("\(name)\t\(s.window.map(\.description) ?? "-")\t\(s.ranking.map(\.name).joined(separator: ","))"
              + (marks.isEmpty ? "" : "\t(\(marks.joined(separator: ", ")))"))
    }
    print("ranking in force: " + (state.ranking.isEmpty ? "-" : state.ranking.map(\.name).joined(separator: ", ")))
}

struct ScenarioListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Your scenarios and the ranking in force.")

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("device scenario")
        let state: ScenarioState = try await account.send(mine, "device scenario") { try await $0.call("GET", "/v1/scenarios") }
        if json { return try printJSON(state) }
        printScenarios(state)
    }
}

struct ScenarioSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Define or replace a scenario's ranking (and window).")

    @Argument(help: "The scenario's name (a-z, 0-9, '-').")
    var name: String

    @Argument(help: "Device names (or DIDs) of your user, best first.")
    var devices: [String]

    @Option(help: "HH:MM-HH:MM (UTC) when it is in force by itself; without it, only when chosen.")
    var window: String?

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let (mine, did) = try account.deviceCredential("device scenario set")
        let scenario: Scenario
        do {
            scenario = Scenario(ranking: try devices.map { try ownDevice($0, of: did, command: "device scenario set") },
                                window: try window.map { try TimeWindow(parsing: $0) })
        } catch let failure as RuntimeFailure { throw failure } catch { throw RuntimeFailure("device scenario set", "\(error)") }
        let edit = ScenarioEdit(name: name, scenario: scenario, atMillis: now())
        let state: ScenarioState = try await account.send(mine, "device scenario set") {
            try await $0.call("PUT", "/v1/scenarios", json: edit)
        }
        printScenarios(state)
    }
}

struct ScenarioUseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "use", abstract: "Choose the scenario in force ('auto': by time windows).")

    @Argument(help: "The scenario's name, or auto.")
    var name: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("device scenario use")
        let choice = ScenarioChoice(name: name == "auto" ? nil : name, atMillis: now())
        let state: ScenarioState = try await account.send(mine, "device scenario use") {
            try await $0.call("PUT", "/v1/scenarios/active", json: choice)
        }
        printScenarios(state)
    }
}

struct ScenarioDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a scenario.")

    @Argument(help: "The scenario's name.")
    var name: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("device scenario delete")
        let edit = ScenarioEdit(name: name, scenario: nil, atMillis: now())
        let state: ScenarioState = try await account.send(mine, "device scenario delete") {
            try await $0.call("PUT", "/v1/scenarios", json: edit)
        }
        printScenarios(state)
    }
}
