import ControlPlane
import Foundation
import Namespace
import Testing
import TestSupport

/// Friends over the API (issue 16, item 1; SMP draft §6.2.2): alice asks bob; the request
/// reaches each of bob's devices in heartbeat answers; his phone confirms; both groups hold the
/// other under the owner's name; either side ends it. Refusals change nothing.
extension NamespaceAPITests {
    static func contacts(_ database: String) async throws {
        let ns = try await Service(database: database)
        let alice = try await ns.register("alice@example.com", device: "laptop")
        let bobLaptop = try await ns.register("bob@example.com", device: "laptop")
        let bobPhone = try await ns.introduce("phone", by: bobLaptop)
        let aliceUID = try UserID("alice@example.com"), bobUID = try UserID("bob@example.com")

        let asked: Introduction = try await ns.client(alice).call(
            "POST", "/v1/contacts/requests", json: ContactRequest(user: bobUID, name: "Bob"))
        #expect(asked.to == bobUID && asked.from.description == "laptop.alice@example.com")
        // Asked again (a lost answer): the same request.
        let again: Introduction = try await ns.client(alice).call(
            "POST", "/v1/contacts/requests", json: ContactRequest(user: bobUID, name: "Bob"))
        #expect(again == asked)
        // Every device of bob's sees it in its heartbeat answers, up to date or not.
        let laptopBeat = try await ns.heartbeat(bobLaptop, address: "10.1.0.2")
        let phoneBeat = try await ns.heartbeat(bobPhone, address: "10.3.0.2")
        #expect(laptopBeat.introductions == [asked] && phoneBeat.introductions == [asked])
        let upToDate = try await ns.heartbeat(bobPhone, address: "10.3.0.2", known: phoneBeat.latestModificationMillis)
        #expect(upToDate.sync == nil && upToDate.introductions == [asked])
        #expect(try await ns.heartbeat(alice, address: "10.5.0.2").introductions == nil)
        let pending: IntroductionList = try await ns.client(alice).call("GET", "/v1/contacts/requests")
        #expect(pending.outgoing == [asked] && pending.incoming.isEmpty)

        // Confirmed on the phone: both hold each other, under their own names.
        let accepted: ContactList = try await ns.client(bobPhone).call("POST", "/v1/contacts/accept", json: ContactAccept(id: asked.id, name: "Alice W."))
        #expect(accepted.contacts.map(\.name) == ["Alice W."])
        let bobs: ContactList = try await ns.client(bobLaptop).call("GET", "/v1/contacts")
        #expect(bobs.contacts.map(\.user) == [aliceUID] && bobs.contacts.first?.name == "Alice W.")
        let alices: ContactList = try await ns.client(alice).call("GET", "/v1/contacts")
        #expect(alices.contacts.map(\.user) == [bobUID] && alices.contacts.first?.name == "Bob")
        #expect(alices.contacts.first?.devices.map(\.did.name) == ["laptop", "phone"])
        #expect(alices.contacts.first?.devices.allSatisfy { $0.locator == nil } == true)
        #expect(try await ns.service.areFriends(aliceUID, bobUID))
        #expect(try await ns.heartbeat(bobLaptop, address: "10.1.0.2").introductions == nil)
        // The contact is in each group's log, so each device's replica has it.
        var bobReplica = NamespaceReplica(user: bobUID)
        bobReplica.apply(try await ns.heartbeat(bobLaptop, address: "10.1.0.2"))
        #expect(bobReplica.contacts == [aliceUID: "Alice W."])

        // Renamed by its owner; the UID stays.
        let renamed: ContactList = try await ns.client(alice).call(
            "PUT", "/v1/contacts/name", json: ContactRename(user: bobUID, name: "Bobby", atMillis: ns.clock.now))
        #expect(renamed.contacts.first?.name == "Bobby" && renamed.contacts.first?.user == bobUID)

        // Removed by bob: neither holds the other; the replicas agree.
        let left: ContactList = try await ns.client(bobLaptop).call("DELETE", "/v1/contacts", query: ["uid": "alice@example.com"])
        #expect(left.contacts.isEmpty)
        let alicesAfter: ContactList = try await ns.client(alice).call("GET", "/v1/contacts")
        #expect(alicesAfter.contacts.isEmpty)
        #expect(try await ns.service.areFriends(aliceUID, bobUID) == false)
        var aliceReplica = NamespaceReplica(user: aliceUID)
        aliceReplica.apply(try await ns.service.changes(of: aliceUID, sinceMillis: nil))
        #expect(aliceReplica.contacts.isEmpty)

        // Declined: the addressed user drops it; the asker may ask again.
        let second: Introduction = try await ns.client(bobPhone).call(
            "POST", "/v1/contacts/requests", json: ContactRequest(user: aliceUID, name: "Alice"))
        let declined: Introduction = try await ns.client(alice).call("DELETE", "/v1/contacts/requests", query: ["id": "\(second.id)"])
        #expect(declined == second)
        #expect(try await ns.service.contactRequests(of: aliceUID, incoming: true).isEmpty)
        await ns.stop()
    }

    static func contactRefusals(_ database: String) async throws {
        let ns = try await Service(database: database)
        let alice = try await ns.register("alice@example.com", device: "laptop")
        let bob = try await ns.register("bob@example.com", device: "laptop")
        let carol = try await ns.register("carol@example.com", device: "laptop")
        let bobUID = try UserID("bob@example.com"), aliceUID = try UserID("alice@example.com")
        let asked: Introduction = try await ns.client(alice).call(
            "POST", "/v1/contacts/requests", json: ContactRequest(user: bobUID, name: "Bob"))
        let before = try await [snapshot(ns, "alice@example.com"), snapshot(ns, "bob@example.com"), snapshot(ns, "carol@example.com")]

        await expectRefused(400, "you can't introduce yourself") {
            let _: Introduction = try await ns.client(alice).call("POST", "/v1/contacts/requests", json: ContactRequest(user: aliceUID, name: "me"))
        }
        await expectRefused(404, "is not registered") {
            let _: Introduction = try await ns.client(alice).call(
                "POST", "/v1/contacts/requests", json: ContactRequest(user: try UserID("nobody@example.com"), name: "?"))
        }
        await expectRefused(409, "asked you first: accept their request \(asked.id)") {
            let _: Introduction = try await ns.client(bob).call("POST", "/v1/contacts/requests", json: ContactRequest(user: aliceUID, name: "A"))
        }
        // Confirming someone else's request: carol, and alice her own.
        for speaker in [carol, alice] {
            await expectRefused(403, "is addressed to bob@example.com: only its devices may confirm it") {
                let _: ContactList = try await ns.client(speaker).call("POST", "/v1/contacts/accept", json: ContactAccept(id: asked.id, name: "x"))
            }
        }
        await expectRefused(403, "not yours") {
            let _: Introduction = try await ns.client(carol).call("DELETE", "/v1/contacts/requests", query: ["id": "\(asked.id)"])
        }
        await expectRefused(404, "is not pending") {
            let _: ContactList = try await ns.client(bob).call("POST", "/v1/contacts/accept", json: ContactAccept(id: asked.id + 100, name: "x"))
        }
        await expectRefused(400, "contact name") {
            let _: ContactList = try await ns.client(bob).call("POST", "/v1/contacts/accept", json: ContactAccept(id: asked.id, name: ""))
        }
        await expectRefused(404, "is not your contact") {
            let _: ContactList = try await ns.client(carol).call("DELETE", "/v1/contacts", query: ["uid": "bob@example.com"])
        }
        await expectRefused(404, "is not your contact") {
            let _: ContactList = try await ns.client(carol).call(
                "PUT", "/v1/contacts/name", json: ContactRename(user: bobUID, name: "B", atMillis: ns.clock.now))
        }
        #expect(try await [snapshot(ns, "alice@example.com"), snapshot(ns, "bob@example.com"), snapshot(ns, "carol@example.com")]
                .elementsEqual(before) { $0 == $1 })
        #expect(try await ns.service.contactRequests(of: bobUID, incoming: true) == [asked])
        // And once friends, asking again is a conflict.
        let _: ContactList = try await ns.client(bob).call("POST", "/v1/contacts/accept", json: ContactAccept(id: asked.id, name: "Alice"))
        await expectRefused(409, "is your contact already") {
            let _: Introduction = try await ns.client(alice).call("POST", "/v1/contacts/requests", json: ContactRequest(user: bobUID, name: "Bob"))
        }
        await ns.stop()
    }
}
