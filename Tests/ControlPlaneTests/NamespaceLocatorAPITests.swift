import ControlPlane
import Foundation
import Namespace
import NIOCore
import NIOHTTP1
import Testing
import TestSupport

/// Locators over the API (issue 10, finding 1: any address was taken, and a device could claim
/// another's): special addresses refused under both policies, other devices' addresses refused
/// by default; every refusal a 400 with its reason, the store unchanged.
extension NamespaceAPITests {
    static let specialAddresses = ["0.0.0.0", "::1", "255.255.255.255", "224.0.0.1", "::", "127.0.0.1", "240.0.0.1",
                                   "0.1.2.3", "ff02::1", "::ffff:127.0.0.1"]

    /// What a refusal must leave as it was: the user's change log and device records.
    static func snapshot(_ ns: Service, _ user: String) async throws -> ([ChangeEntry], [DeviceRecord]) {
        let uid = try UserID(user)
        return (try await ns.service.changes(of: uid, sinceMillis: nil), try await ns.service.devices(of: uid))
    }

    static func specialLocators(_ database: String) async throws {
        for policy in [LocatorPolicy.sourceAddress, .unattributed] {
            // One database for both rounds on PostgreSQL: a user per round.
            let user = "\(policy.rawValue.lowercased())@example.com"
            let ns = try await Service(database: database, locatorPolicy: policy)
            let bob = try await ns.register(user, device: "laptop")
            let _: HeartbeatAnswer = try await ns.client(bob).call("POST", "/v1/heartbeat", json: HeartbeatRequest(
                knownModificationMillis: nil, locator: nil))
            let before = try await snapshot(ns, user)
            ns.advance(500)  // a refused heartbeat that still stamped the device would show
            for address in specialAddresses {
                let locator = try Locator(address: address, agentPort: 7445)
                await expectRefused(400, "locator \(locator.address): ") {
                    let _: Resolution = try await ns.client(bob).call("PUT", "/v1/locator", json: locator)
                }
                await expectRefused(400, "locator \(locator.address): ") {
                    let _: HeartbeatAnswer = try await ns.client(bob).call("POST", "/v1/heartbeat", json: HeartbeatRequest(
                        knownModificationMillis: nil, locator: locator))
                }
            }
            let after = try await snapshot(ns, user)
            #expect(after.0 == before.0, "\(policy)")
            #expect(after.1 == before.1, "\(policy)")
            await ns.stop()
        }
    }

    static func attributedLocators(_ database: String) async throws {
        let ns = try await Service(database: database, locatorPolicy: .sourceAddress)
        let bob = try await ns.register("bob@example.com", device: "laptop")
        let alice = try await ns.register("alice@example.com", device: "laptop")
        let before = try await snapshot(ns, "bob@example.com")

        // Over the socket: the requests come from 127.0.0.1, so a claim of 10.1.0.2 is not attributed.
        let claim = try Locator(address: "10.1.0.2", agentPort: 7445)
        await expectRefused(400, "locator 10.1.0.2 is not the address this request came from (127.0.0.1)") {
            let _: Resolution = try await ns.client(bob).call("PUT", "/v1/locator", json: claim)
        }
        await expectRefused(400, "locator 10.1.0.2 is not the address this request came from (127.0.0.1)") {
            _ = try await ns.heartbeat(bob, address: "10.1.0.2")
        }
        #expect(try await snapshot(ns, "bob@example.com") == before)

        // The routes as the endpoint calls them, with the source address a lab device would have.
        func call(_ route: String, as device: Credential, from source: String, _ body: some Encodable) async throws -> HTTPEndpoint.Response {
            let handler = try #require(ns.routes.routes[route])
            let parts = route.split(separator: " ")
            return await handler(HTTPEndpoint.Request(
                method: .init(rawValue: String(parts[0])), path: String(parts[1]), body: Array(try JSONEncoder().encode(body)),
                peer: device.identity, remoteAddress: try SocketAddress(ipAddress: source, port: 40_000)))
        }
        let heartbeat = HeartbeatRequest(knownModificationMillis: nil, locator: claim)
        for route in ["PUT /v1/locator", "POST /v1/heartbeat"] {
            let body: any Encodable = route.hasPrefix("PUT") ? claim : heartbeat
            // Alice claims bob's address from her own: refused, with both addresses named.
            let stolen = try await call(route, as: alice, from: "10.1.0.9", body)
            #expect(stolen.status == .badRequest, "\(route)")
            #expect(String(decoding: stolen.body, as: UTF8.self).contains(
                "locator 10.1.0.2 is not the address this request came from (10.1.0.9)"), "\(route)")
        }
        #expect(try await ns.service.resolve(try DeviceID("laptop.alice@example.com")).locator == nil)
        // Bob, from the address he claims (also as a dual-stack listener would see it): taken.
        let moved = try await call("PUT /v1/locator", as: bob, from: "10.1.0.2", claim)
        #expect(moved.status == .ok, "\(String(decoding: moved.body, as: UTF8.self))")
        let beat = try await call("POST /v1/heartbeat", as: bob, from: "::ffff:10.1.0.2", heartbeat)
        #expect(beat.status == .ok, "\(String(decoding: beat.body, as: UTF8.self))")
        #expect(try await ns.service.resolve(try DeviceID("laptop.bob@example.com")).locator == claim)
        await ns.stop()

        // --allow-unattributed-locators: the same claim over loopback is taken.
        let nat = try await Service(database: database, locatorPolicy: .unattributed)
        let carol = try await nat.register("carol@example.com", device: "laptop")
        let taken: Resolution = try await nat.client(carol).call("PUT", "/v1/locator", json: claim)
        #expect(taken.locator == claim)
        _ = try await nat.heartbeat(carol, address: "10.1.0.3")
        #expect(try await nat.service.resolve(try DeviceID("laptop.carol@example.com")).locator?.address == "10.1.0.3")
        await nat.stop()
    }
}
