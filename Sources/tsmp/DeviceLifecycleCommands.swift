import ArgumentParser
import ControlPlane
import Foundation
import Namespace

/// `tsmp device remove | rename | renew`: a device's life after its introduction
/// (`NamespaceService.remove(device:by:)` says why removal is a registry check, not a short
/// certificate lifetime).
struct DeviceRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a device of your user for good: its credential stops working at once, at the namespace and the proxy.",
        discussion: """
        Its name stays retired (it can't be introduced again: pick another name). The last \
        device of a user can't be removed.

        Example:
          tsmp device remove phone --credentials laptop.cred
        """)

    @Argument(help: "The device's name (or DID) within your user.")
    var device: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let (mine, did) = try account.deviceCredential("device remove")
        let target = try ownDevice(device, of: did, command: "device remove")
        let removal: DeviceRemoval = try await account.send(mine, "device remove") {
            try await $0.call("DELETE", "/v1/devices", query: ["did": target.description])
        }
        print("\(removal.did): removed (its credential no longer works)")
    }
}

struct DeviceRenameCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rename",
        abstract: "Give a device of your user a display name; its DID does not change.",
        discussion: """
        Example:
          tsmp device rename phone "Bob's phone" --credentials laptop.cred
        """)

    @Argument(help: "The device's name (or DID) within your user.")
    var device: String

    @Argument(help: "The display name (1-64 characters).")
    var name: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let (mine, did) = try account.deviceCredential("device rename")
        let target = try ownDevice(device, of: did, command: "device rename")
        let edit = RenameDeviceRequest(did: target, name: name, atMillis: Int64(Date().timeIntervalSince1970 * 1000))
        let record: DeviceRecord = try await account.send(mine, "device rename") {
            try await $0.call("PUT", "/v1/devices/name", json: edit)
        }
        print("\(record.did): \"\(record.label ?? record.did.name)\"")
    }
}

struct DeviceRenewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Renew this device's certificate before it expires, with a new key.",
        discussion: """
        The new key and certificate replace the credential file (atomically, mode 0600) once \
        the namespace answers; until then the old one stays.

        Example:
          tsmp device renew --credentials phone.cred
        """)

    @Option(help: "This device's credential (rewritten with the new one).")
    var credentials: String

    @OptionGroup var lab: InsecureLabOption

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let (mine, _) = try loadDeviceCredential(credentials, command: "device renew")
        let (key, csr): (String, String)
        do { (key, csr) = try KeyMaterial.newKeyAndCSR(for: mine.identity) } catch { throw RuntimeFailure("device renew", "\(error)") }
        let issued: IssuedCredential = try await sendToNamespace(mine, lab.insecureLab, "device renew") {
            try await $0.call("POST", "/v1/credentials", json: RenewCredentialRequest(csr: csr))
        }
        let renewed = Credential(identity: issued.identity, keyPEM: key, certificatePEM: issued.certificate, caPEM: issued.ca,
                                 namespaceURL: mine.namespaceURL)
        do { try renewed.write(to: credentials) } catch { throw RuntimeFailure("device renew", "\(error)") }
        print("\(issued.identity): renewed, valid until \(renewed.expires.map { "\($0)" } ?? "?")")
    }
}

/// NAME or NAME.UID of the caller's own user.
func ownDevice(_ text: String, of caller: DeviceID, command: String) throws -> DeviceID {
    do { return text.contains("@") ? try DeviceID(text) : try DeviceID(name: text, user: caller.user) } catch {
        throw RuntimeFailure(command, "\(error)")
    }
}
