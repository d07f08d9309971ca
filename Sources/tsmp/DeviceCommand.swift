import ArgumentParser
import ControlPlane
import Foundation
import Namespace

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Your devices in the namespace: introduce a new one, list them with their status.",
        discussion: """
        Examples:
          tsmp device introduce phone --credentials laptop.cred --out phone.cred
          tsmp device list --credentials laptop.cred --json
        """,
        subcommands: [DeviceIntroduceCommand.self, DeviceListCommand.self])
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

    @Option(help: "This device's credential.")
    var credentials: String

    @Option(help: "Where to write the new device's credential.")
    var out: String

    @OptionGroup var lab: InsecureLabOption

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try loadCredential(credentials, command: "device introduce")
        guard mine.identity.role == .device, let did = try? DeviceID(mine.identity.name) else {
            throw RuntimeFailure("device introduce", "\(credentials) is a credential of \(mine.identity), not of a device")
        }
        try lab.check(mine.namespaceURL, "the credential's namespace URL")
        let identity: PeerIdentity
        do { identity = try .device("\(name).\(did.user)") } catch { throw RuntimeFailure("device introduce", "\(error)") }
        try await issue(identity, command: "device introduce", adminCredential: mine,
                        namespace: mine.namespaceURL, insecureLab: lab.insecureLab, out: out) { csr in
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

    @Option(help: "This device's credential.")
    var credentials: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var lab: InsecureLabOption

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try loadCredential(credentials, command: "device list")
        try lab.check(mine.namespaceURL, "the credential's namespace URL")
        let list: DeviceList
        do {
            list = try await withEventLoop { group in
                let link = try PeerClient(baseURL: mine.namespaceURL, credential: mine, insecureLab: lab.insecureLab,
                                           expectedServer: .identity(.namespace), group: group)
                return try await link.call("GET", "/v1/devices")
            }
        } catch {
            throw RuntimeFailure("device list", "\(error)")
        }
        if json { return try printJSON(list) }
        let rank = Dictionary(uniqueKeysWithValues: list.preferences.enumerated().map { ($1, $0 + 1) })
        print("DEVICE".padding(toLength: 34, withPad: " ", startingAt: 0) + "STATUS   LOCATOR              PREF")
        for d in list.devices {
            let locator = d.locator.map { l in l.agentPort.map { "\(l.address):\($0)" } ?? l.address } ?? "-"
            print(d.did.description.padding(toLength: 34, withPad: " ", startingAt: 0)
                  + d.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                  + locator.padding(toLength: 21, withPad: " ", startingAt: 0)
                  + (rank[d.did].map(String.init) ?? "-"))
        }
    }
}
