import ControlPlane
import Foundation
import Namespace
import Testing
import TestSupport

/// Device lifecycle over the API (issue 16, item 5): remove (the credential stops working at
/// once; the name stays retired), rename (the DID stays), renew (a new certificate, same or new
/// key). Every refusal has a reason and leaves the change log and the devices as they were.
extension NamespaceAPITests {
    static func lifecycle(_ database: String) async throws {
        let ns = try await Service(database: database)
        let laptop = try await ns.register("bob@example.com", device: "laptop")
        let phone = try await ns.introduce("phone", by: laptop)
        _ = try await ns.introduce("tablet", by: laptop)
        _ = try await ns.heartbeat(phone, address: "10.3.0.2")
        let bob = try UserID("bob@example.com")
        let gw = try await ns.proxy("gw1")

        // Rename: the label changes, the DID does not; the log says so.
        let renamed: DeviceRecord = try await ns.client(laptop).call("PUT", "/v1/devices/name", json: RenameDeviceRequest(
            did: try DeviceID("phone.bob@example.com"), name: "Bob's phone", atMillis: ns.clock.now))
        #expect(renamed.did.description == "phone.bob@example.com" && renamed.label == "Bob's phone")
        let list: DeviceList = try await ns.client(phone).call("GET", "/v1/devices")
        #expect(list.devices.first { $0.did.name == "phone" }?.label == "Bob's phone")
        // An older rename that arrives late does not win (last writer by the device's time).
        let _: DeviceRecord = try await ns.client(phone).call("PUT", "/v1/devices/name", json: RenameDeviceRequest(
            did: try DeviceID("phone.bob@example.com"), name: "old name", atMillis: ns.clock.now - 5_000))
        #expect(try await ns.service.devices(of: bob).first { $0.did.name == "phone" }?.label == "Bob's phone")

        // Renew: the device's own certificate again, for a new key; the new credential works.
        let (newKey, csr) = try KeyMaterial.newKeyAndCSR(for: phone.identity)
        let issued: IssuedCredential = try await ns.client(phone).call("POST", "/v1/credentials", json: RenewCredentialRequest(csr: csr))
        #expect(issued.identity == phone.identity)
        let renewedPhone = Credential(identity: issued.identity, keyPEM: newKey, certificatePEM: issued.certificate,
                                      caPEM: issued.ca, namespaceURL: ns.url)
        let who: WhoAmI = try await ns.client(renewedPhone).call("GET", "/v1/whoami")
        #expect(who.identity == phone.identity)

        // Ranked, then removed: the ranking loses it, the proxy can't resolve it, it can't speak.
        let _: DeviceList = try await ns.client(laptop).call("PUT", "/v1/preferences", json: PreferencesEdit(
            ranking: [try DeviceID("phone.bob@example.com"), try DeviceID("laptop.bob@example.com")], atMillis: ns.clock.now))
        ns.advance(10)
        let removal: DeviceRemoval = try await ns.client(laptop).call("DELETE", "/v1/devices", query: ["did": "phone.bob@example.com"])
        #expect(removal.did.description == "phone.bob@example.com" && removal.by.description == "laptop.bob@example.com")
        let after: DeviceList = try await ns.client(laptop).call("GET", "/v1/devices")
        #expect(after.devices.map(\.did.name) == ["laptop", "tablet"])
        #expect(after.preferences.map(\.name) == ["laptop"])
        for credential in [phone, renewedPhone] {
            await expectRefused(403, "was removed from its group") { _ = try await ns.heartbeat(credential, address: "10.3.0.2") }
        }
        await expectRefused(404, "was removed from its group") {
            let _: Resolution = try await ns.client(gw).call("GET", "/v1/resolve", query: ["did": "phone.bob@example.com"])
        }
        let online: ResolutionList = try await ns.client(gw).call("GET", "/v1/resolve", query: ["uid": "bob@example.com"])
        #expect(!online.devices.contains { $0.did.name == "phone" })
        // A device may remove itself; the group's replica built from the log agrees with the service.
        let tablet = try ns.ca.issueCredential(for: try .device("tablet.bob@example.com"), namespaceURL: ns.url)
        let _: DeviceRemoval = try await ns.client(tablet).call("DELETE", "/v1/devices", query: ["did": "tablet.bob@example.com"])
        var replica = NamespaceReplica(user: bob)
        replica.apply(try await ns.service.changes(of: bob, sinceMillis: nil))
        #expect(replica.devices.map(\.did.name) == ["laptop"])
        #expect(replica.preferences.map(\.name) == ["laptop"])
        await ns.stop()
    }

    static func lifecycleRefusals(_ database: String) async throws {
        let ns = try await Service(database: database)
        let laptop = try await ns.register("bob@example.com", device: "laptop")
        let phone = try await ns.introduce("phone", by: laptop)
        let alice = try await ns.register("alice@example.com", device: "laptop")
        _ = try await ns.introduce("phone", by: alice)
        let gw = try await ns.proxy("gw1")
        let _: DeviceRemoval = try await ns.client(laptop).call("DELETE", "/v1/devices", query: ["did": "phone.bob@example.com"])
        let before = (try await snapshot(ns, "bob@example.com"), try await snapshot(ns, "alice@example.com"))

        // Another user's device: neither removed nor renamed.
        await expectRefused(403, "may remove only bob@example.com's devices") {
            let _: DeviceRemoval = try await ns.client(laptop).call("DELETE", "/v1/devices", query: ["did": "phone.alice@example.com"])
        }
        await expectRefused(403, "may rename only bob@example.com's devices") {
            let _: DeviceRecord = try await ns.client(laptop).call("PUT", "/v1/devices/name", json: RenameDeviceRequest(
                did: try DeviceID("laptop.alice@example.com"), name: "mine now", atMillis: ns.clock.now))
        }
        // The removed device: every request refused with the reason, renewal included.
        await expectRefused(403, "was removed from its group") {
            let _: DeviceList = try await ns.client(phone).call("GET", "/v1/devices")
        }
        await expectRefused(403, "was removed from its group") {
            let (_, csr) = try KeyMaterial.newKeyAndCSR(for: phone.identity)
            let _: IssuedCredential = try await ns.client(phone).call("POST", "/v1/credentials", json: RenewCredentialRequest(csr: csr))
        }
        await expectRefused(403, "was removed from its group") {
            let _: DeviceRemoval = try await ns.client(phone).call("DELETE", "/v1/devices", query: ["did": "laptop.bob@example.com"])
        }
        // Removed twice, the last device, a retired name, a bad label, a missing ?did, not a device.
        await expectRefused(404, "was removed already") {
            let _: DeviceRemoval = try await ns.client(laptop).call("DELETE", "/v1/devices", query: ["did": "phone.bob@example.com"])
        }
        await expectRefused(409, "the last device of bob@example.com") {
            let _: DeviceRemoval = try await ns.client(laptop).call("DELETE", "/v1/devices", query: ["did": "laptop.bob@example.com"])
        }
        await expectRefused(409, "its name is retired") { _ = try await ns.introduce("phone", by: laptop) }
        for label in ["", "   ", String(repeating: "x", count: 65), "tab\there"] {
            await expectRefused(400, "device name") {
                let _: DeviceRecord = try await ns.client(laptop).call("PUT", "/v1/devices/name", json: RenameDeviceRequest(
                    did: try DeviceID("laptop.bob@example.com"), name: label, atMillis: ns.clock.now))
            }
        }
        await expectRefused(404, "was removed") {
            let _: DeviceRecord = try await ns.client(laptop).call("PUT", "/v1/devices/name", json: RenameDeviceRequest(
                did: try DeviceID("phone.bob@example.com"), name: "ghost", atMillis: ns.clock.now))
        }
        await expectRefused(400, "give ?did=") {
            let _: DeviceRemoval = try await ns.client(laptop).call("DELETE", "/v1/devices")
        }
        await expectRefused(403, "only devices may do this") {
            let _: DeviceRemoval = try await ns.client(gw).call("DELETE", "/v1/devices", query: ["did": "laptop.bob@example.com"])
        }
        await expectRefused(400, "certificate request refused") {
            let _: IssuedCredential = try await ns.client(laptop).call("POST", "/v1/credentials", json: RenewCredentialRequest(csr: "nonsense"))
        }
        #expect(try await snapshot(ns, "bob@example.com") == before.0)
        #expect(try await snapshot(ns, "alice@example.com") == before.1)
        await ns.stop()
    }
}
