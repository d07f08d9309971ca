import Foundation
@testable import Namespace
import SQLKit
import Testing

/// What holds across operations, on both databases: the state survives a restart (and a
/// newer schema is refused), concurrent edits converge in time order (SMP draft §6.2.3), an
/// operation is one transaction (a write failing half-way leaves nothing behind), and
/// concurrent requests on one or two services (two gateways on one database) lose nothing.
extension NamespaceScenarios {
    // MARK: Restart

    /// Everything the service can tell about a set of users.
    struct Snapshot: Equatable {
        var devices: [[DeviceRecord]] = []
        var preferences: [[DeviceID]] = []
        var changes: [[ChangeEntry]] = []
        var latest: [Int64] = []
        var proxies: [Bool] = []

        init(_ ns: NamespaceService, users: [UserID]) async throws {
            for user in users {
                devices.append(try await ns.devices(of: user))
                preferences.append(try await ns.preferences(of: user))
                changes.append(try await ns.changes(of: user, sinceMillis: nil))
                latest.append(try await ns.latestModificationMillis(of: user))
            }
            for name in ["gw1", "gw2"] { proxies.append(try await ns.proxyExists(name)) }
        }
    }

    static func restart(_ backend: Backend) async throws {
        let f = try NamespaceFixture(backend)
        do {
            var store = try await f.openStore()
            var ns = f.service(store)
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            _ = try await ns.introduce(device: "phone", by: laptop)
            _ = try await ns.registerUser(alice, firstDevice: "desk")
            try await ns.registerProxy(name: "gw1")
            f.clock.advance(by: 100)
            _ = try await ns.heartbeat(from: phone, knownModificationMillis: nil, locator: locator("fd00::2", port: 7000))
            try await ns.setPreferences(by: phone, ranking: [phone, laptop], atMillis: f.clock.millis)
            try await ns.setStatus(of: laptop, to: .away, atMillis: f.clock.millis)
            let before = try await Snapshot(ns, users: [bob, alice])
            await store.close()
            await expectRefusal(NamespaceError.storage) { _ = try await ns.devices(of: bob) }

            store = try await f.openStore()
            ns = f.service(store)
            #expect(try await Snapshot(ns, users: [bob, alice]) == before)
            #expect(try await ns.device(atAddress: "fd00::2") == phone)
            // It goes on where it stopped: new entries after the old ones, no reused numbers.
            f.clock.advance(by: 100)
            _ = try await ns.introduce(device: "tablet", by: phone)
            let log = try await ns.changes(of: bob, sinceMillis: nil)
            #expect(log.last?.seq ?? 0 > before.changes[0].last?.seq ?? .max)
            #expect(log.last?.recordedMillis ?? 0 > before.latest[0])
            await store.close()
        } catch {
            await f.cleanUp()
            throw error
        }
        await f.cleanUp()
    }

    /// A database written by a newer version is refused rather than misread; the schema is created once.
    static func schemaVersion(_ backend: Backend) async throws {
        let f = try NamespaceFixture(backend)
        do {
            let store = try #require(try await f.openStore() as? SQLNamespaceStore)
            let versions = try await store.sqlTransaction { db in
                try await db.raw("SELECT version FROM ns_schema").all().map { try $0.decode(column: "version", as: Int64.self) }
            }
            #expect(versions == [Int64(SQLSchema.currentVersion)])
            await store.close()
            let again = try #require(try await f.openStore() as? SQLNamespaceStore)   // opens an existing schema as it is
            try await again.sqlTransaction { db in try await db.raw("UPDATE ns_schema SET version = 99").run() }
            await again.close()
            let reason = await expectRefusal(NamespaceError.storage) { _ = try await f.openStore() }
            #expect(reason?.contains("schema version 99 is newer") == true)
        } catch {
            await f.cleanUp()
            throw error
        }
        await f.cleanUp()
    }

    // MARK: Concurrent edits converge in time order (SMP §6.2.3)

    static func convergence(_ backend: Backend) async throws {
        // The same four edits reach two namespaces in opposite orders.
        let edits: [(DeviceID, Int64, Edit)] = [
            (laptop, 2_000, .preferences([laptop, phone])),
            (phone, 1_500, .preferences([phone, laptop])),   // older: must lose wherever it arrives
            (phone, 3_000, .status(.busy)),
            (phone, 2_500, .status(.away)),                  // older: must lose
        ]
        var states: [(NamespaceReplica, [DeviceRecord], [DeviceID])] = []
        for order in [edits, edits.reversed()] {
            try await NamespaceFixture.withService(backend) { f, ns in
                let base = f.clock.millis
                _ = try await ns.registerUser(bob, firstDevice: "laptop")
                _ = try await ns.introduce(device: "phone", by: laptop)
                f.clock.advance(by: 10_000)
                for (device, offset, edit) in order {
                    switch edit {
                    case .preferences(let ranking): try await ns.setPreferences(by: device, ranking: ranking, atMillis: base + offset)
                    case .status(let status): try await ns.setStatus(of: device, to: status, atMillis: base + offset)
                    }
                }
                #expect(try await ns.preferences(of: bob) == [laptop, phone])
                #expect(try await ns.resolve(phone).status == .busy)

                // Replicas fed the log in different orders and batches end equal to the service.
                let log = try await ns.changes(of: bob, sinceMillis: nil)
                var forward = NamespaceReplica(user: bob)
                forward.apply(log)
                var backward = NamespaceReplica(user: bob)
                for entry in log.reversed() { backward.apply([entry]) }
                var shuffled = NamespaceReplica(user: bob)
                var generator = SplitMix(seed: 7)
                let mixed = log.shuffled(using: &generator)
                shuffled.apply(Array(mixed.prefix(3)))
                shuffled.apply(Array(mixed.dropFirst(3)))
                shuffled.apply(Array(mixed.prefix(2)))       // twice: no effect
                #expect(forward == backward)
                #expect(forward == shuffled)
                let records = try await ns.devices(of: bob)
                #expect(forward.devices == records.map { Resolution(did: $0.did, status: $0.status, locator: $0.locator) })
                #expect(forward.preferences == (try await ns.preferences(of: bob)))
                #expect(forward.latestModificationMillis == (try await ns.latestModificationMillis(of: bob)))
                #expect(forward.onlineDevices == (try await ns.resolve(user: bob)))

                // A replica kept up to date by heartbeats alone agrees too.
                var agent = NamespaceReplica(user: bob)
                agent.apply(try await ns.heartbeat(from: laptop, knownModificationMillis: nil, locator: nil))
                try await ns.setStatus(of: laptop, to: .online, atMillis: base + 20_000)
                agent.apply(try await ns.heartbeat(from: laptop, knownModificationMillis: agent.latestModificationMillis, locator: nil))
                var full = NamespaceReplica(user: bob)
                full.apply(try await ns.changes(of: bob, sinceMillis: nil))
                #expect(agent == full)
                states.append((forward, records, try await ns.preferences(of: bob)))
            }
        }
        // Both arrival orders end in the same state.
        #expect(states.count == 2)
        if states.count == 2 {
            #expect(states[0].1.map(\.status) == states[1].1.map(\.status))
            #expect(states[0].2 == states[1].2)
            #expect(states[0].0.devices == states[1].0.devices)
        }
    }

    enum Edit { case preferences([DeviceID]), status(DeviceStatus) }

    // MARK: One transaction per operation

    /// A write failing half-way through an operation leaves nothing of it behind.
    static func failedOperationsChangeNothing(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            // Registration fails after the user row and the first log entry were written.
            let failing = NamespaceService(store: FaultyStore(base: ns.store, fault: .insertDevice), clock: f.clock.read, logger: NamespaceFixture.logger)
            await expectRefusal(NamespaceError.storage) { _ = try await failing.registerUser(bob, firstDevice: "laptop") }
            await expectRefusal(NamespaceError.notFound) { _ = try await ns.devices(of: bob) }
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            #expect(try await ns.changes(of: bob, sinceMillis: nil).map(\.change) == [.deviceAdded, .status(.online)])

            // A heartbeat fails after it logged the phone online at a new address.
            _ = try await ns.introduce(device: "phone", by: laptop)
            let before = try await NamespaceScenarios.Snapshot(ns, users: [bob])
            f.clock.advance(by: 1000)
            let broken = NamespaceService(store: FaultyStore(base: ns.store, fault: .setLastHeartbeat), clock: f.clock.read, logger: NamespaceFixture.logger)
            await expectRefusal(NamespaceError.storage) {
                _ = try await broken.heartbeat(from: phone, knownModificationMillis: nil, locator: locator("10.0.0.2"))
            }
            #expect(try await NamespaceScenarios.Snapshot(ns, users: [bob]) == before)
            #expect(try await ns.device(atAddress: "10.0.0.2") == nil)
        }
    }

    // MARK: Concurrency

    /// Many requests at once on one service, and two services (two gateways) on one database.
    static func concurrentRequests(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { f, ns in
            _ = try await ns.registerUser(bob, firstDevice: "laptop")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<20 {
                    group.addTask { _ = try await ns.introduce(device: "d\(i)", by: laptop) }
                }
                try await group.waitForAll()
            }
            let second = f.service(try await f.openStore())
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<20 {
                    let service = i % 2 == 0 ? ns : second
                    group.addTask {
                        _ = try await service.heartbeat(from: did("d\(i).bob@example.com"), knownModificationMillis: nil,
                                                        locator: locator("10.1.0.\(i + 1)"))
                    }
                }
                try await group.waitForAll()
            }
            await second.store.close()
            let devices = try await ns.devices(of: bob)
            #expect(devices.count == 21)
            #expect(devices.allSatisfy { $0.status == .online })
            let log = try await ns.changes(of: bob, sinceMillis: nil)
            #expect(Set(log.map(\.seq)).count == log.count)
            // Each heartbeat got its own modification time.
            let stamps = log.filter { if case .locator = $0.change { return true } else { return false } }.map(\.recordedMillis)
            #expect(Set(stamps).count == 20)
            var replica = NamespaceReplica(user: bob)
            replica.apply(log)
            #expect(replica.devices == devices.map { Resolution(did: $0.did, status: $0.status, locator: $0.locator) })
        }
    }
}
