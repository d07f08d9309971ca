import ArgumentParser
import ControlPlane
import Foundation
import Namespace

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Your devices in the namespace: introduce, list, rank, rename, remove; renew this one's credential.",
        discussion: """
        Examples:
          tsmp device introduce phone --credentials laptop.cred --out phone.cred
          tsmp device list --credentials laptop.cred --json
          tsmp device rank phone laptop --credentials laptop.cred
          tsmp device status busy --credentials phone.cred
          tsmp device rename phone "Bob's phone" --credentials laptop.cred
          tsmp device remove phone --credentials laptop.cred
          tsmp device renew --credentials phone.cred
        """,
        subcommands: [DeviceIntroduceCommand.self, DeviceListCommand.self, DeviceRankCommand.self, DeviceStatusCommand.self,
                      DeviceRenameCommand.self, DeviceRemoveCommand.self, DeviceRenewCommand.self, DeviceScenarioCommand.self])
}

struct DeviceIntroduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "introduce",
        abstract: "Introduce a new device of your user (SMP draft §6.2.2); write its credential.",
        discussion: """
        Run on an existing device of the user. The new device's key is made here and written \
        with its certificate to --out (mode 0600): carry that file to the new device.

        Example:
          tsmp device introduce phone --credentials laptop.cred --out phone.cred
        """)

    @Argument(help: "The new device's name (its DID is NAME.YOUR-EMAIL).")
    var name: String

    @Option(help: "Where to write the new device's credential.")
    var out: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let (mine, did) = try account.deviceCredential("device introduce")
        try account.lab.check(mine.namespaceURL, "the credential's namespace URL")
        let identity: PeerIdentity
        do { identity = try .device("\(name).\(did.user)") } catch { throw RuntimeFailure("device introduce", "\(error)") }
        try await issue(identity, command: "device introduce", adminCredential: mine,
                        namespace: mine.namespaceURL, insecureLab: account.lab.insecureLab, out: out) { csr in
            ("/v1/devices", IntroduceDeviceRequest(name: name, csr: csr))
        }
    }
}

struct DeviceListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List your user's devices, their status and locator.",
        discussion: """
        Example:
          tsmp device list --credentials laptop.cred
        """)

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("device list")
        try account.lab.check(mine.namespaceURL, "the credential's namespace URL")
        let list: DeviceList = try await account.send(mine, "device list") { try await $0.call("GET", "/v1/devices") }
        if json { return try printJSON(list) }
        let rank = Dictionary(uniqueKeysWithValues: list.preferences.enumerated().map { ($1, $0 + 1) })
        print("DEVICE".padding(toLength: 34, withPad: " ", startingAt: 0) + "STATUS   LOCATOR              PREF  NAME")
        for d in list.devices {
            let locator = d.locator.map { l in l.agentPort.map { "\(l.address):\($0)" } ?? l.address } ?? "-"
            print(d.did.description.padding(toLength: 34, withPad: " ", startingAt: 0)
                  + d.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                  + locator.padding(toLength: 21, withPad: " ", startingAt: 0)
                  + (rank[d.did].map(String.init) ?? "-").padding(toLength: 6, withPad: " ", startingAt: 0)
                  + (d.label ?? "-"))
        }
    }
}

struct DeviceRankCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rank",
        abstract: "Set your user's device preference, best first (resolution by UID follows it).",
        discussion: """
        The edit carries this device's time; when two devices edit concurrently the later \
        edit wins everywhere (SMP draft §6.2.3).

        Example:
          tsmp device rank phone laptop --credentials laptop.cred
        """)

    @Argument(help: "Device names (or DIDs) of your user, best first.")
    var devices: [String]

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let (mine, did) = try account.deviceCredential("device rank")
        let ranking: [DeviceID]
        do {
            ranking = try devices.map { $0.contains("@") ? try DeviceID($0) : try DeviceID(name: $0, user: did.user) }
        } catch {
            throw RuntimeFailure("device rank", "\(error)")
        }
        let edit = PreferencesEdit(ranking: ranking, atMillis: Int64(Date().timeIntervalSince1970 * 1000))
        let list: DeviceList = try await account.send(mine, "device rank") { try await $0.call("PUT", "/v1/preferences", json: edit) }
        print("preference: " + list.preferences.map(\.name).joined(separator: ", "))
    }
}

struct DeviceStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Set this device's status: online, busy or away (busy and away devices take no flows).",
        discussion: """
        Example:
          tsmp device status busy --credentials phone.cred
        """)

    @Argument(help: "online, busy or away.")
    var status: String

    @OptionGroup var account: DeviceCredentialOptions

    func validate() throws {
        guard ["online", "busy", "away"].contains(status) else { throw ValidationError("status must be online, busy or away") }
    }

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("device status")
        let edit = StatusEdit(status: DeviceStatus(rawValue: status)!, atMillis: Int64(Date().timeIntervalSince1970 * 1000))
        let now: Resolution = try await account.send(mine, "device status") { try await $0.call("PUT", "/v1/status", json: edit) }
        print("\(now.did): \(now.status.rawValue)")
    }
}

/// One request to the namespace as `credential`; failures as `tsmp COMMAND: reason`.
func sendToNamespace<T: Sendable>(_ credential: Credential, _ insecureLab: Bool, _ command: String,
                                  _ body: @escaping @Sendable (PeerClient) async throws -> T) async throws -> T {
    do {
        return try await withEventLoop { group in
            try await body(try PeerClient(baseURL: credential.namespaceURL, credential: credential, insecureLab: insecureLab,
                                          expectedServer: .identity(.namespace), group: group))
        }
    } catch {
        throw RuntimeFailure(command, "\(error)")
    }
}
