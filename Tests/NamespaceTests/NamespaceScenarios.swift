import Foundation
@testable import Namespace
import SQLKit
import Testing

/// Every service function, written once and run on both databases (NamespaceTests.swift).
enum NamespaceScenarios {
    static let bob = uid("bob@example.com")
    static let alice = uid("alice@example.com")
    static let laptop = did("laptop.bob@example.com")
    static let phone = did("phone.bob@example.com")
    static let tablet = did("tablet.bob@example.com")

    // MARK: Registration (SMP §6.2.1)

    static func registration(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            let record = try await ns.registerUser(bob, firstDevice: "laptop")
            #expect(record == DeviceRecord(did: laptop, status: .online, locator: nil, lastHeartbeatMillis: nil,
                                           registeredMillis: f.clock.millis))
            #expect(try await ns.devices(of: bob) == [record])
            #expect(try await ns.deviceExists(laptop))
            #expect(try await !ns.deviceExists(phone))
            let log = try await ns.changes(of: bob, sinceMillis: nil)
            #expect(log.map(\.change) == [.deviceAdded, .status(.online)])
            #expect(log.allSatisfy { $0.device == laptop && $0.timeMillis == f.clock.millis })
            #expect(try await ns.latestModificationMillis(of: bob) == f.clock.millis)

            // A second registration of the same user, even with another device, is refused.
            await expectRefusal(NamespaceError.conflict) { _ = try await ns.registerUser(bob, firstDevice: "phone") }
            #expect(try await ns.devices(of: bob) == [record])
            #expect(try await ns.changes(of: bob, sinceMillis: nil) == log)

            // Bad device names: refused, and the user is not created.
            for bad in ["", "-laptop", "lap.top", "lap top", "läptop", String(repeating: "a", count: 64)] {
                await expectRefusal(NamespaceError.invalid) { _ = try await ns.registerUser(alice, firstDevice: bad) }
            }
            await expectRefusal(NamespaceError.notFound) { _ = try await ns.devices(of: alice) }
            // Names are lowercased like e-mails.
            let mixed = try await ns.registerUser(uid("Alice@Example.COM"), firstDevice: "Desk-1")
            #expect(mixed.did == did("desk-1.alice@example.com"))
        }
    }

    // MARK: Introduction (SMP §6.2.2) and proxies

    static func introduction(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            _ = try await ns.registerUser(alice, firstDevice: "desk")
            f.clock.advance(by: 500)
            let record = try await ns.introduce(device: "phone", by: laptop)
            #expect(record == DeviceRecord(did: phone, status: .offline, locator: nil, lastHeartbeatMillis: nil,
                                           registeredMillis: f.clock.millis))
            #expect(try await ns.devices(of: bob).map(\.did) == [laptop, phone])
            #expect(try await ns.deviceExists(phone))
            let log = try await ns.changes(of: bob, sinceMillis: nil)
            #expect(log.last?.change == .deviceAdded && log.last?.device == phone)

            // The new device can introduce the next one.
            _ = try await ns.introduce(device: "tablet", by: phone)
            let before = try await ns.changes(of: bob, sinceMillis: nil)
            // Unknown introducers, duplicate and bad names: refused, nothing stored.
            await expectRefusal(NamespaceError.notFound) { _ = try await ns.introduce(device: "tv", by: did("ghost.bob@example.com")) }
            await expectRefusal(NamespaceError.notFound) { _ = try await ns.introduce(device: "tv", by: did("phone.carol@example.com")) }
            await expectRefusal(NamespaceError.conflict) { _ = try await ns.introduce(device: "phone", by: laptop) }
            await expectRefusal(NamespaceError.conflict) { _ = try await ns.introduce(device: "PHONE", by: tablet) }
            await expectRefusal(NamespaceError.invalid) { _ = try await ns.introduce(device: "tv.x", by: laptop) }
            #expect(try await ns.devices(of: bob).map(\.did) == [laptop, phone, tablet])
            #expect(try await ns.changes(of: bob, sinceMillis: nil) == before)
            // Alice's group is untouched by bob's introductions.
            #expect(try await ns.devices(of: alice).map(\.did) == [did("desk.alice@example.com")])
        }
    }

    static func proxies(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { _, ns in
            #expect(try await !ns.proxyExists("gw1"))
            try await ns.registerProxy(name: "gw1")
            #expect(try await ns.proxyExists("gw1"))
            #expect(try await ns.proxyExists("GW1"))
            #expect(try await !ns.proxyExists("gw2"))
            await expectRefusal(NamespaceError.conflict) { try await ns.registerProxy(name: "gw1") }
            await expectRefusal(NamespaceError.invalid) { try await ns.registerProxy(name: "gw.1") }
            await expectRefusal(NamespaceError.invalid) { _ = try await ns.proxyExists("") }
        }
    }

    // MARK: Heartbeats and sync (SMP §6.2.3)

    static func heartbeat(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            _ = try await ns.introduce(device: "phone", by: laptop)
            f.clock.advance(by: 1000)

            // First heartbeat: knows nothing, so a full sync; the phone is now online at its address.
            let first = try await ns.heartbeat(from: phone, knownModificationMillis: nil, locator: locator("10.0.0.2", port: 7000))
            let all = try await ns.changes(of: bob, sinceMillis: nil)
            #expect(first.sync == all)
            #expect(first.latestModificationMillis == f.clock.millis)
            #expect(first.statusChanges.map(\.change) == [.status(.online), .status(.online)])
            #expect(first.statusChanges.last?.device == phone)
            #expect(all.suffix(2).map(\.change) == [.status(.online), .locator(locator("10.0.0.2", port: 7000))])
            var record = try await ns.devices(of: bob)[1]
            #expect(record.status == .online && record.locator == locator("10.0.0.2", port: 7000))
            #expect(record.lastHeartbeatMillis == f.clock.millis)

            // Up to date and nothing changed: no sync, no status changes, no new entries.
            f.clock.advance(by: 10_000)
            let quiet = try await ns.heartbeat(from: phone, knownModificationMillis: first.latestModificationMillis,
                                               locator: locator("10.0.0.2", port: 7000))
            #expect(quiet == HeartbeatAnswer(latestModificationMillis: first.latestModificationMillis, statusChanges: [], sync: nil))
            #expect(try await ns.changes(of: bob, sinceMillis: nil) == all)
            record = try await ns.devices(of: bob)[1]
            #expect(record.lastHeartbeatMillis == f.clock.millis)

            // The address changed: logged, and the answer syncs exactly that entry.
            f.clock.advance(by: 10_000)
            let moved = try await ns.heartbeat(from: phone, knownModificationMillis: quiet.latestModificationMillis,
                                               locator: locator("10.0.1.9", port: 7000))
            #expect(moved.latestModificationMillis > quiet.latestModificationMillis)
            #expect(moved.sync?.map(\.change) == [.locator(locator("10.0.1.9", port: 7000))])
            #expect(moved.statusChanges.isEmpty)

            // The laptop, behind since the registration, gets every entry after it.
            let behind = try await ns.heartbeat(from: laptop, knownModificationMillis: all[1].recordedMillis, locator: nil)
            let expected = try await ns.changes(of: bob, sinceMillis: all[1].recordedMillis)
            #expect(behind.sync == expected)
            #expect(behind.sync?.count == all.count - 2 + 1)
            #expect(behind.statusChanges == expected.filter { $0.change == .status(.online) })
            // A modification time the group never had (ahead): full sync.
            let ahead = try await ns.heartbeat(from: laptop, knownModificationMillis: moved.latestModificationMillis + 99_999, locator: nil)
            #expect(ahead.sync == (try await ns.changes(of: bob, sinceMillis: nil)))

            // A busy device stays busy through its heartbeats.
            try await ns.setStatus(of: phone, to: .busy, atMillis: f.clock.millis)
            f.clock.advance(by: 1)
            _ = try await ns.heartbeat(from: phone, knownModificationMillis: nil, locator: nil)
            #expect(try await ns.resolve(phone).status == .busy)

            await expectRefusal(NamespaceError.notFound) {
                _ = try await ns.heartbeat(from: did("ghost.bob@example.com"), knownModificationMillis: nil, locator: nil)
            }
            await expectRefusal(NamespaceError.notFound) {
                _ = try await ns.heartbeat(from: did("ghost.nobody@example.com"), knownModificationMillis: nil, locator: nil)
            }
        }
    }

    static func heartbeatExpiry(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            let t0 = f.clock.millis
            _ = try await ns.registerUser(bob, firstDevice: "laptop")   // online, last seen t0
            _ = try await ns.introduce(device: "phone", by: laptop)     // offline: nothing to expire
            f.clock.advance(by: 5_000)
            _ = try await ns.heartbeat(from: phone, knownModificationMillis: nil, locator: nil)   // online, seen t0+5000
            try await ns.setStatus(of: phone, to: .away, atMillis: f.clock.millis)

            f.clock.advance(by: 25_000)                                 // t0+30000: exactly 3 intervals
            #expect(try await ns.sweep() == [])
            f.clock.advance(by: 1)                                      // the laptop missed 3 heartbeats
            #expect(try await ns.sweep() == [laptop])
            #expect(try await ns.resolve(laptop).status == .offline)
            #expect(try await ns.resolve(phone).status == .away)
            let entry = try await ns.changes(of: bob, sinceMillis: nil).last
            #expect(entry?.device == laptop && entry?.change == .status(.offline) && entry?.timeMillis == t0 + 30_001)

            f.clock.advance(by: 5_000)                                  // the away phone expires too
            #expect(try await ns.sweep() == [phone])
            #expect(try await ns.sweep() == [])
            #expect(try await ns.resolve(user: bob) == [])

            // A heartbeat brings it back.
            _ = try await ns.heartbeat(from: laptop, knownModificationMillis: nil, locator: nil)
            #expect(try await ns.resolve(laptop).status == .online)
            #expect(try await ns.resolve(user: bob).map(\.did) == [laptop])
        }
    }

    // MARK: Mobility (SMP §6.2.4) and reverse lookup

    static func locatorUpdate(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            _ = try await ns.introduce(device: "phone", by: laptop)
            #expect(try await ns.device(atAddress: "10.0.0.2") == nil)

            try await ns.updateLocator(of: phone, to: locator("10.0.0.2"))
            #expect(try await ns.device(atAddress: "10.0.0.2") == phone)
            #expect(try await ns.resolve(phone).locator == locator("10.0.0.2"))
            let count = try await ns.changes(of: bob, sinceMillis: nil).count
            try await ns.updateLocator(of: phone, to: locator("10.0.0.2"))      // the same: no entry
            #expect(try await ns.changes(of: bob, sinceMillis: nil).count == count)

            // IPv6, looked up in any spelling of the same address.
            f.clock.advance(by: 10)
            try await ns.updateLocator(of: phone, to: locator("2001:DB8:0:0::1", port: 7000))
            #expect(try await ns.resolve(phone).locator == locator("2001:db8::1", port: 7000))
            #expect(try await ns.device(atAddress: "2001:db8:0000::0001") == phone)
            #expect(try await ns.device(atAddress: "10.0.0.2") == nil)
            #expect(try await ns.changes(of: bob, sinceMillis: nil).last?.change == .locator(locator("2001:db8::1", port: 7000)))

            // Two devices at one address: the one that moved there last.
            f.clock.advance(by: 10)
            try await ns.updateLocator(of: laptop, to: locator("10.0.0.7"))
            f.clock.advance(by: 10)
            try await ns.updateLocator(of: phone, to: locator("10.0.0.7"))
            #expect(try await ns.device(atAddress: "10.0.0.7") == phone)

            await expectRefusal(NamespaceError.invalid) { _ = try await ns.device(atAddress: "10.0.0.256") }
            await expectRefusal(NamespaceError.invalid) { _ = try await ns.device(atAddress: "phone") }
            await expectRefusal(NamespaceError.notFound) { try await ns.updateLocator(of: did("tv.bob@example.com"), to: locator("10.0.0.3")) }
        }
    }

    // MARK: Resolution (SRR) and preferences

    static func resolution(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            for name in ["phone", "tablet", "desk", "tv", "watch"] { _ = try await ns.introduce(device: name, by: laptop) }
            for name in ["phone", "tablet", "desk", "watch"] {
                _ = try await ns.heartbeat(from: did("\(name).bob@example.com"), knownModificationMillis: nil, locator: locator("10.0.0.\(name.count)"))
            }
            try await ns.setStatus(of: did("watch.bob@example.com"), to: .busy, atMillis: f.clock.millis)
            f.clock.advance(by: 1)
            // tv: offline (never heard from), watch: busy. Ranked: tv, tablet, laptop.
            let ranking = [did("tv.bob@example.com"), tablet, laptop]
            try await ns.setPreferences(by: phone, ranking: ranking, atMillis: f.clock.millis)
            #expect(try await ns.preferences(of: bob) == ranking)
            let resolved = try await ns.resolve(user: bob)
            #expect(resolved.map(\.did) == [tablet, laptop, did("desk.bob@example.com"), phone])
            #expect(resolved.allSatisfy { $0.status == .online })
            #expect(resolved.first?.locator == locator("10.0.0.6"))

            #expect(try await ns.resolve(tablet) == Resolution(did: tablet, status: .online, locator: locator("10.0.0.6")))
            #expect(try await ns.resolve(did("tv.bob@example.com")) == Resolution(did: did("tv.bob@example.com"), status: .offline, locator: nil))
            await expectRefusal(NamespaceError.notFound) { _ = try await ns.resolve(did("ghost.bob@example.com")) }
            await expectRefusal(NamespaceError.notFound) { _ = try await ns.resolve(user: alice) }
            await expectRefusal(NamespaceError.notFound) { _ = try await ns.changes(of: alice, sinceMillis: nil) }
        }
    }

    static func preferencesRefused(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            _ = try await ns.introduce(device: "phone", by: laptop)
            _ = try await ns.registerUser(alice, firstDevice: "desk")
            try await ns.setPreferences(by: laptop, ranking: [phone, laptop], atMillis: f.clock.millis)
            let log = try await ns.changes(of: bob, sinceMillis: nil)
            let now = f.clock.millis

            let reason = await expectRefusal(NamespaceError.forbidden) {
                try await ns.setPreferences(by: laptop, ranking: [did("desk.alice@example.com"), laptop], atMillis: now)
            }
            #expect(reason?.contains("desk.alice@example.com") == true)
            await expectRefusal(NamespaceError.forbidden) {
                try await ns.setPreferences(by: did("desk.alice@example.com"), ranking: [laptop], atMillis: now)
            }
            await expectRefusal(NamespaceError.invalid) { try await ns.setPreferences(by: laptop, ranking: [phone, phone], atMillis: now) }
            await expectRefusal(NamespaceError.notFound) { try await ns.setPreferences(by: laptop, ranking: [tablet], atMillis: now) }
            await expectRefusal(NamespaceError.notFound) { try await ns.setPreferences(by: tablet, ranking: [laptop], atMillis: now) }
            await expectRefusal(NamespaceError.invalid) {
                try await ns.setPreferences(by: laptop, ranking: [laptop], atMillis: now + NamespaceService.maximumClockAheadMillis + 1)
            }
            await expectRefusal(NamespaceError.invalid) { try await ns.setStatus(of: laptop, to: .away, atMillis: -1) }
            #expect(try await ns.preferences(of: bob) == [phone, laptop])
            #expect(try await ns.preferences(of: alice) == [])
            #expect(try await ns.changes(of: bob, sinceMillis: nil) == log)
            // A ranking may be emptied.
            try await ns.setPreferences(by: phone, ranking: [], atMillis: now + 1)
            #expect(try await ns.preferences(of: bob) == [])
        }
    }
}

/// A small seeded generator, so shuffles repeat.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
