import ControlPlane
import Foundation
import Logging
import Namespace

/// `tsmp bench-control --sharing` (issue 16, benchmark): in the service, through the store, with
/// USERS users of DEVICES devices and CONTACTS contacts each (a ring: user u befriends the next
/// CONTACTS/2): what a device's group sync costs (a heartbeat that syncs everything, one that
/// is up to date), resolution by UID with scenarios (three per user, by time window), and the
/// revocation check per request (the registry read the namespace does for every caller, and
/// the proxy's by-DID resolution of the caller in the service).
enum BenchSharingFigures {
    static func run(db: String, users: Int, devicesPerUser: Int, contacts: Int, concurrency: Int,
                    logger: Logger) async throws -> [BenchControlCommand.Figure] {
        let store: any NamespaceStore
        do { store = try await NamespaceDatabase.open(db, logger: logger) } catch {
            throw RuntimeFailure("bench-control", "database \(db): \(error)")
        }
        defer { Task { await store.close() } }
        let clock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
        let service = NamespaceService(store: store, clock: clock, heartbeatIntervalMillis: 60_000, missedHeartbeats: 3, logger: logger)
        let run = "s\(UInt32.random(in: 0...UInt32.max))"
        let user: @Sendable (Int) throws -> UserID = { u in try UserID("u\(u).\(run)@bench.example") }
        let device: @Sendable (Int, Int) throws -> DeviceID = { u, n in try DeviceID(name: "d\(n)", user: try user(u)) }
        var figures: [BenchControlCommand.Figure] = []

        var t = Date()
        _ = try await BenchControlCommand.parallel(count: users, width: concurrency) { u in
            let first = try await service.registerUser(try user(u), firstDevice: "d0")
            for n in 1..<devicesPerUser { _ = try await service.introduce(device: "d\(n)", by: first.did) }
            for n in 0..<devicesPerUser { _ = try await service.heartbeat(from: try device(u, n), knownModificationMillis: nil, locator: nil) }
            return 0
        }
        figures.append(BenchControlCommand.figure("setup: \(users) users x \(devicesPerUser) devices, online", count: users * devicesPerUser,
                                                  since: t, latencies: nil))
        // Friendships: a request and its acceptance each; sequential per pair, pairs in parallel
        // with disjoint users at a time would need a schedule: pairs go one width-batch at a time.
        let half = contacts / 2
        t = Date()
        let pairs = (0..<users).flatMap { u in (1...max(1, half)).map { (u, (u + $0) % users) } }.filter { $0.0 != $0.1 }
        let pairLatencies = try await BenchControlCommand.parallel(count: pairs.count, width: 1) { i in
            let (a, b) = pairs[i]
            let start = DispatchTime.now().uptimeNanoseconds
            let asked = try await service.requestContact(try user(b), by: try device(a, 0), name: "u\(b)")
            _ = try await service.acceptContact(asked.id, by: try device(b, 1), name: "u\(a)")
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(BenchControlCommand.figure("friendship (request + accept), \(pairs.count) pairs", count: pairs.count, since: t,
                                                  latencies: pairLatencies))
        // Scenarios: three per user, by window.
        let now = clock()
        t = Date()
        _ = try await BenchControlCommand.parallel(count: users, width: concurrency) { u in
            let ranking = try (0..<devicesPerUser).map { try device(u, $0) }
            for (i, (name, window)) in [("day", "08:00-18:00"), ("home", "18:00-23:00"), ("night", "23:00-08:00")].enumerated() {
                let shift = i % ranking.count
                let order = Array(ranking[shift...]) + Array(ranking[..<shift])
                try await service.setScenario(name, to: Scenario(ranking: order, window: try TimeWindow(parsing: window)),
                                              by: try device(u, 0), atMillis: now)
            }
            return 0
        }
        figures.append(BenchControlCommand.figure("scenarios: 3 per user", count: users * 3, since: t, latencies: nil))

        let sample = min(users * devicesPerUser, 5_000)
        t = Date()
        let fullSync = try await BenchControlCommand.parallel(count: sample, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await service.heartbeat(from: try device((i &* 7919) % users, i % devicesPerUser), knownModificationMillis: nil, locator: nil)
            return DispatchTime.now().uptimeNanoseconds - start
        }
        let answer = try await service.heartbeat(from: try device(0, 0), knownModificationMillis: nil, locator: nil)
        let bytes = try JSONEncoder().encode(answer).count
        figures.append(BenchControlCommand.figure("group sync: heartbeat with the whole log (\(answer.sync?.count ?? 0) entries, \(bytes) B)",
                                                  count: sample, since: t, latencies: fullSync))
        t = Date()
        let steady = try await BenchControlCommand.parallel(count: sample, width: concurrency) { i in
            let did = try device((i &* 7919) % users, i % devicesPerUser)
            let known = try await service.latestModificationMillis(of: did.user)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await service.heartbeat(from: did, knownModificationMillis: known, locator: nil)
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(BenchControlCommand.figure("group sync: heartbeat up to date", count: sample, since: t, latencies: steady))
        t = Date()
        let byUID = try await BenchControlCommand.parallel(count: sample, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await service.resolve(user: try user((i &* 7919) % users))
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(BenchControlCommand.figure("resolution by UID, ranking in force (3 scenarios)", count: sample, since: t, latencies: byUID))
        t = Date()
        let registry = try await BenchControlCommand.parallel(count: sample, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await service.refusal(of: try device((i &* 7919) % users, i % devicesPerUser))
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(BenchControlCommand.figure("revocation check: the namespace's registry read per request", count: sample, since: t,
                                                  latencies: registry))
        t = Date()
        let byDID = try await BenchControlCommand.parallel(count: sample, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await service.resolve(try device((i &* 7919) % users, i % devicesPerUser))
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(BenchControlCommand.figure("revocation check at the proxy: SRR of the caller (service; + one mTLS request)",
                                                  count: sample, since: t, latencies: byDID))
        return figures
    }
}
