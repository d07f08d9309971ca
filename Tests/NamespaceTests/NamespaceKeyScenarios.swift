import Foundation
@testable import Namespace
import SQLKit
import Testing

/// Registration and introduction repeated with the same key (issue 10, finding 5: a user
/// committed but never acknowledged got 409 forever), and the schema migration that stores the
/// keys; run on both databases (NamespaceTests.swift).
enum NamespaceKeyScenarios {
    static let bob = uid("bob@example.com")
    static let laptop = did("laptop.bob@example.com")
    static let phone = did("phone.bob@example.com")

    static func key(_ byte: UInt8) -> KeyFingerprint { try! KeyFingerprint(sha256Digest: [UInt8](repeating: byte, count: 32)) }

    static func repeatedRegistration(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            let first = try await ns.registerUser(bob, firstDevice: "laptop", key: key(1))
            f.clock.advance(by: 1_000)
            _ = try await ns.heartbeat(from: laptop, knownModificationMillis: nil, locator: locator("10.1.0.2", port: 7445))
            let log = try await ns.changes(of: bob, sinceMillis: nil)
            let now = try await ns.devices(of: bob)

            // The same request again (the answer was lost): the device's record, nothing changes.
            let again = try await ns.registerUser(bob, firstDevice: "Laptop", key: key(1))
            #expect(again == now.first)
            #expect(again.did == first.did && again.registeredMillis == first.registeredMillis)
            #expect(try await ns.changes(of: bob, sinceMillis: nil) == log)

            // Anything else is a conflict with a reason, and changes nothing.
            var reason = await expectRefusal(NamespaceError.conflict) { _ = try await ns.registerUser(bob, firstDevice: "laptop", key: key(2)) }
            #expect(reason?.contains("certified for another key") == true)
            reason = await expectRefusal(NamespaceError.conflict) { _ = try await ns.registerUser(bob, firstDevice: "tablet", key: key(1)) }
            #expect(reason?.contains("registered already") == true)
            reason = await expectRefusal(NamespaceError.conflict) { _ = try await ns.registerUser(bob, firstDevice: "laptop") }
            #expect(reason?.contains("registered already") == true)

            // Introduction: the same, and only the first device counts as the registration's.
            let introduced = try await ns.introduce(device: "phone", by: laptop, key: key(3))
            let afterIntroduction = try await ns.changes(of: bob, sinceMillis: nil)
            #expect(try await ns.introduce(device: "phone", by: laptop, key: key(3)) == introduced)
            reason = await expectRefusal(NamespaceError.conflict) { _ = try await ns.introduce(device: "phone", by: laptop, key: key(4)) }
            #expect(reason?.contains("certified for another key") == true)
            reason = await expectRefusal(NamespaceError.conflict) { _ = try await ns.introduce(device: "phone", by: laptop) }
            #expect(reason?.contains("exists already") == true)
            reason = await expectRefusal(NamespaceError.conflict) { _ = try await ns.registerUser(bob, firstDevice: "phone", key: key(3)) }
            #expect(reason?.contains("another first device") == true)
            #expect(try await ns.changes(of: bob, sinceMillis: nil) == afterIntroduction)
            #expect(try await ns.devices(of: bob).map(\.did) == [laptop, phone])

            // Proxies: the same.
            try await ns.registerProxy(name: "gw1", key: key(5))
            try await ns.registerProxy(name: "GW1", key: key(5))
            reason = await expectRefusal(NamespaceError.conflict) { try await ns.registerProxy(name: "gw1", key: key(6)) }
            #expect(reason?.contains("certified for another key") == true)
            reason = await expectRefusal(NamespaceError.conflict) { try await ns.registerProxy(name: "gw1") }
            #expect(reason == "proxy gw1 is registered already")
            try await ns.registerProxy(name: "gw2")
            reason = await expectRefusal(NamespaceError.conflict) { try await ns.registerProxy(name: "gw2", key: key(5)) }
            #expect(reason?.contains("no key is on record") == true)
        }
    }

    /// A version-1 database (before keys were kept) opens, migrates to the current version and
    /// keeps its data; its devices have no key on record, so a repeat is refused with that reason.
    static func migrationFromVersion1(_ backend: Backend) async throws {
        let f = try NamespaceFixture(backend)
        do {
            let old = SQLNamespaceStore.unmigrated(try NamespaceDatabase.target(for: f.url), logger: NamespaceFixture.logger)
            try await old.sqlTransaction { db in
                try await db.raw("CREATE TABLE ns_schema (version \(unsafeRaw: old.target.kind.integer) NOT NULL)").run()
                for statement in SQLSchema.migrations(old.target.kind)[0] { try await db.raw(SQLQueryString(statement)).run() }
                try await db.raw("INSERT INTO ns_schema (version) VALUES (1)").run()
                try await db.raw("INSERT INTO ns_users (uid, registered_ms, modified_ms, preferences) VALUES ('bob@example.com', 5, 5, '[]')").run()
                try await db.raw("""
                    INSERT INTO ns_devices (uid, name, status, status_ms, status_seq, registered_ms)
                    VALUES ('bob@example.com', 'laptop', 'online', 5, 2, 5)
                    """).run()
                try await db.raw("""
                    INSERT INTO ns_changes (uid, device, time_ms, recorded_ms, kind, payload) VALUES
                    ('bob@example.com', 'laptop', 5, 5, 'deviceAdded', '{"kind":"deviceAdded"}'),
                    ('bob@example.com', 'laptop', 5, 5, 'status', '{"kind":"status","status":"online"}')
                    """).run()
            }
            await old.close()

            let store = try #require(try await f.openStore() as? SQLNamespaceStore)
            do {
                let versions = try await store.sqlTransaction { db in
                    try await db.raw("SELECT version FROM ns_schema").all().map { try $0.decode(column: "version", as: Int64.self) }
                }
                #expect(versions == [Int64(SQLSchema.currentVersion)])
                let ns = f.service(store)
                #expect(try await ns.devices(of: bob).map(\.did) == [laptop])
                let reason = await expectRefusal(NamespaceError.conflict) { _ = try await ns.registerUser(bob, firstDevice: "laptop", key: key(1)) }
                #expect(reason?.contains("no key is on record") == true)
                // New devices get their key remembered as usual.
                _ = try await ns.introduce(device: "phone", by: laptop, key: key(2))
                _ = try await ns.introduce(device: "phone", by: laptop, key: key(2))
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        } catch {
            await f.cleanUp()
            throw error
        }
        await f.cleanUp()
    }
}
