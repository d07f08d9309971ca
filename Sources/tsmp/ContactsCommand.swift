import ArgumentParser
import ControlPlane
import Foundation
import Namespace

/// `tsmp contacts`: your friends (SMP draft §6.2.2): ask, confirm, decline, rename, remove.
struct ContactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts",
        abstract: "Your contacts (friends): list them with their devices' status, ask, accept, decline, rename, remove.",
        discussion: """
        A request reaches every device of the other user (its agent logs it from the heartbeat \
        answers, `tsmp contacts requests` lists it); any one of them accepts it.

        Examples:
          tsmp contacts --credentials laptop.cred --json
          tsmp contacts add bob@example.com --name Bob --credentials laptop.cred
          tsmp contacts accept 7 --name Alice --credentials phone.cred
          tsmp contacts remove alice@example.com --credentials phone.cred
        """,
        subcommands: [ContactsListCommand.self, ContactsAddCommand.self, ContactsRequestsCommand.self, ContactsAcceptCommand.self,
                      ContactsDeclineCommand.self, ContactsRenameCommand.self, ContactsRemoveCommand.self],
        defaultSubcommand: ContactsListCommand.self)
}

struct ContactsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List your contacts and their devices' status.")

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("contacts")
        let list: ContactList = try await account.send(mine, "contacts") { try await $0.call("GET", "/v1/contacts") }
        if json { return try printJSON(list) }
        print("CONTACT".padding(toLength: 34, withPad: " ", startingAt: 0) + "NAME".padding(toLength: 20, withPad: " ", startingAt: 0)
              + "DEVICES")
        for c in list.contacts {
            let devices = c.devices.map { "\($0.did.name)(\($0.status.rawValue))" }.joined(separator: " ")
            print(c.user.email.padding(toLength: 34, withPad: " ", startingAt: 0) + c.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + (devices.isEmpty ? "-" : devices))
        }
    }
}

struct ContactsAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Ask another user to become your contact.")

    @Argument(help: "The other user's UID (e-mail).")
    var user: String

    @Option(help: "Your name for them.")
    var name: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("contacts add")
        let uid: UserID
        do { uid = try UserID(user) } catch { throw RuntimeFailure("contacts add", "\(error)") }
        let asked: Introduction = try await account.send(mine, "contacts add") {
            try await $0.call("POST", "/v1/contacts/requests", json: ContactRequest(user: uid, name: name))
        }
        print("request \(asked.id) to \(asked.to): pending until one of their devices accepts it")
    }
}

struct ContactsRequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "requests", abstract: "Pending requests to and from you.")

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("contacts requests")
        let list: IntroductionList = try await account.send(mine, "contacts requests") {
            try await $0.call("GET", "/v1/contacts/requests")
        }
        if json { return try printJSON(list) }
        for r in list.incoming { print("\(r.id)\tfrom \(r.from.user) (\(r.from))") }
        for r in list.outgoing { print("\(r.id)\tto \(r.to) (asked by \(r.from))") }
    }
}

struct ContactsAcceptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "accept", abstract: "Accept a request addressed to you.")

    @Argument(help: "The request's id (tsmp contacts requests).")
    var id: Int64

    @Option(help: "Your name for the user who asked.")
    var name: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("contacts accept")
        let list: ContactList = try await account.send(mine, "contacts accept") {
            try await $0.call("POST", "/v1/contacts/accept", json: ContactAccept(id: id, name: name))
        }
        for c in list.contacts { print("\(c.user): your contact \"\(c.name)\"") }
    }
}

struct ContactsDeclineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decline", abstract: "Decline a request to you, or withdraw yours.")

    @Argument(help: "The request's id.")
    var id: Int64

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("contacts decline")
        let dropped: Introduction = try await account.send(mine, "contacts decline") {
            try await $0.call("DELETE", "/v1/contacts/requests", query: ["id": "\(id)"])
        }
        print("request \(dropped.id) (\(dropped.from.user) -> \(dropped.to)) dropped")
    }
}

struct ContactsRenameCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Your new name for a contact.")

    @Argument(help: "The contact's UID.")
    var user: String

    @Argument(help: "The new name.")
    var name: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("contacts rename")
        let uid: UserID
        do { uid = try UserID(user) } catch { throw RuntimeFailure("contacts rename", "\(error)") }
        let edit = ContactRename(user: uid, name: name, atMillis: Int64(Date().timeIntervalSince1970 * 1000))
        let _: ContactList = try await account.send(mine, "contacts rename") {
            try await $0.call("PUT", "/v1/contacts/name", json: edit)
        }
        print("\(uid): \"\(name)\"")
    }
}

struct ContactsRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "End the friendship: neither of you holds the other any more.")

    @Argument(help: "The contact's UID.")
    var user: String

    @OptionGroup var account: DeviceCredentialOptions

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try account.credential("contacts remove")
        let _: ContactList = try await account.send(mine, "contacts remove") {
            try await $0.call("DELETE", "/v1/contacts", query: ["uid": user])
        }
        print("\(user): no longer a contact")
    }
}
