import ArgumentParser
import ControlPlane
import Foundation
import Logging
import Namespace
import NIOPosix

/// `tsmp bench-control`: the namespace service's figures on loopback (issue "TSMP control
/// plane", benchmark): registration, heartbeat handling and sweeps with many registered
/// devices (in the service, through the store), and SRR latency and throughput through the
/// real mutual-TLS endpoint under a bounded load, beside `GET /v1/whoami` on the same
/// endpoint as the same-run baseline (what the transport alone costs).
struct BenchControlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-control",
        abstract: "Benchmark the namespace service: heartbeats with many devices, resolution over mutual TLS.",
        discussion: """
        Everything runs in this process on 127.0.0.1 and stops by itself. scripts/bench-control \
        runs it against SQLite and a throwaway PostgreSQL and adds the migration request-to-MTR \
        latency measured in a namespace lab.

        Examples:
          tsmp bench-control --db sqlite:/tmp/bench.db --devices 10000
          tsmp bench-control --db postgresql://postgres@127.0.0.1:5432/bench --requests 2000 --json
          tsmp bench-control --security
          tsmp bench-control --sharing --db sqlite:/tmp/sharing.db --users 1000 --per-user 5 --contacts 50
        """)

    @Option(help: "sqlite:PATH, sqlite::memory: or postgresql://... (its tables are created; use a scratch database).")
    var db: String = "sqlite::memory:"

    @Option(help: "Devices to register (four per user).")
    var devices: Int = 10_000

    @Option(help: "HTTP requests per measured kind.")
    var requests: Int = 2_000

    @Option(help: "Concurrent clients (HTTP) or callers (service).")
    var concurrency: Int = 8

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Only the control-plane security figures: the request guard and ownership checks per request (with and without, same run) and a 2,000-connection flood's effect on a request (no database).")
    var security = false

    @Flag(help: "Only the sharing figures (issue 16): group sync, resolution by UID with scenarios, the revocation check, with --users users of --per-user devices and --contacts contacts each.")
    var sharing = false

    @Option(help: "With --sharing: users.")
    var users: Int = 1_000

    @Option(help: "With --sharing: devices per user.")
    var perUser: Int = 5

    @Option(help: "With --sharing: contacts per user (even).")
    var contacts: Int = 50

    func validate() throws {
        guard (2...100_000).contains(users), (1...64).contains(perUser), (2...1_000).contains(contacts), contacts < users else {
            throw ValidationError("--users 2-100000, --per-user 1-64, --contacts 2-1000 and fewer than --users")
        }
        guard (4...200_000).contains(devices) else { throw ValidationError("--devices must be 4-200000") }
        guard (10...100_000).contains(requests) else { throw ValidationError("--requests must be 10-100000") }
        guard (1...256).contains(concurrency) else { throw ValidationError("--concurrency must be 1-256") }
    }

    struct Figure: Codable {
        var name: String
        var count: Int
        var seconds: Double
        var perSecond: Double
        var p50Milliseconds: Double?
        var p99Milliseconds: Double?
        var ratioToBaseline: Double?
    }

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .error
            return h
        }
        let logger = Logger(label: "bench")
        if sharing {
            let figures = try await BenchSharingFigures.run(db: db, users: users, devicesPerUser: perUser, contacts: contacts,
                                                            concurrency: concurrency, logger: logger)
            return try print(figures, title: "sharing: \(NamespaceServer.redacted(db)), \(users) users x \(perUser) devices x \(contacts) contacts")
        }
        if security {
            return try print(await BenchSecurityFigures.run(requests: requests, concurrency: concurrency, logger: logger), title: "control-plane security")
        }
        let store: any NamespaceStore
        do { store = try await NamespaceDatabase.open(db, logger: logger) } catch {
            throw RuntimeFailure("bench-control", "database \(db): \(error)")
        }
        let clock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
        let service = NamespaceService(store: store, clock: clock, heartbeatIntervalMillis: 60_000, missedHeartbeats: 3)
        var figures: [Figure] = []

        // Registration: users with four devices each (the first registers, it introduces the others).
        let users = devices / 4
        var registered: [DeviceID] = []
        registered.reserveCapacity(users * 4)
        let run = "r\(UInt32.random(in: 0...UInt32.max))"
        let t0 = Date()
        _ = try await Self.parallel(count: users, width: concurrency) { u in
            let user = try UserID("u\(u).\(run)@bench.example")
            let first = try await service.registerUser(user, firstDevice: "d0")
            for n in 1..<4 { _ = try await service.introduce(device: "d\(n)", by: first.did) }
            return 0
        }
        for u in 0..<users { for n in 0..<4 { registered.append(try DeviceID("d\(n).u\(u).\(run)@bench.example")) } }
        let dids = registered
        figures.append(Self.figure("register (1 user + 3 introductions)", count: users * 4, since: t0, latencies: nil))

        // Heartbeats: every device once, with a locator (each one a change in its group).
        var t = Date()
        let heartbeatLatencies = try await Self.parallel(count: dids.count, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await service.heartbeat(from: dids[i], knownModificationMillis: nil,
                                            locator: try Locator(address: "10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)", agentPort: 7445))
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(Self.figure("heartbeat, first (locator change, \(dids.count) devices)", count: dids.count, since: t,
                                   latencies: heartbeatLatencies))
        t = Date()
        let steadyLatencies = try await Self.parallel(count: dids.count, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try await service.heartbeat(from: dids[i], knownModificationMillis: nil, locator: nil)
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(Self.figure("heartbeat, steady (\(dids.count) devices)", count: dids.count, since: t, latencies: steadyLatencies))
        t = Date()
        let swept = try await service.sweep()
        figures.append(Self.figure("sweep of \(dids.count) devices (\(swept.count) expired)", count: 1, since: t, latencies: nil))
        // The same store seen a day later: every device missed its heartbeats and goes offline.
        let later = NamespaceService(store: store, clock: { clock() + 86_400_000 }, heartbeatIntervalMillis: 60_000, missedHeartbeats: 3)
        t = Date()
        let expired = try await later.sweep()
        figures.append(Self.figure("sweep marking \(expired.count) devices offline", count: expired.count, since: t, latencies: nil))

        // SRR over the real endpoint, against /v1/whoami on the same endpoint.
        let ca = try CertificateAuthority.create()
        let routes = NamespaceRoutes(service: service, authority: ca, namespaceURL: "", clock: clock)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let endpoint = try await HTTPEndpoint.start(
            host: "127.0.0.1", port: 0, group: group, logger: logger, routes: routes.routes,
            security: .mutualTLS(try ServerTLS(credential: try ca.issueCredential(for: .namespace, namespaceURL: ""))),
            // One proxy identity sends every request, far above a peer's default rate: the
            // checks still run (their cost is measured), the rate limit is lifted.
            requestGuard: RequestGuard(limits: .init(requestsPerSecond: 1_000_000, burst: 1_000_000)))
        let url = "https://127.0.0.1:\(endpoint.localAddress!.port!)"
        try await service.registerProxy(name: "bench-\(run)")
        let proxy = try ca.issueCredential(for: try .proxy("bench-\(run)"), namespaceURL: url)
        let client = try PeerClient(baseURL: url, credential: proxy, expectedServer: .identity(.namespace), group: group)
        let perKind = requests
        t = Date()
        let whoami = try await Self.parallel(count: perKind, width: concurrency) { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            let _: WhoAmI = try await client.call("GET", "/v1/whoami")
            return DispatchTime.now().uptimeNanoseconds - start
        }
        let baseline = Self.figure("HTTP GET /v1/whoami (baseline: mTLS connection + request)", count: perKind, since: t, latencies: whoami)
        figures.append(baseline)
        t = Date()
        let byDID = try await Self.parallel(count: perKind, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            let _: Resolution = try await client.call("GET", "/v1/resolve", query: ["did": dids[(i &* 7919) % dids.count].description])
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(Self.figure("HTTP SRR DID -> locator", count: perKind, since: t, latencies: byDID, baseline: baseline))
        t = Date()
        let byUID = try await Self.parallel(count: perKind, width: concurrency) { i in
            let start = DispatchTime.now().uptimeNanoseconds
            let _: ResolutionList = try await client.call("GET", "/v1/resolve", query: ["uid": dids[(i &* 7919) % dids.count].user.description])
            return DispatchTime.now().uptimeNanoseconds - start
        }
        figures.append(Self.figure("HTTP SRR UID -> online devices", count: perKind, since: t, latencies: byUID, baseline: baseline))
        await endpoint.close()
        try? await group.shutdownGracefully()
        await store.close()

        if json {
            struct Output: Codable { var database: String; var devices: Int; var concurrency: Int; var figures: [Figure] }
            return try printJSON(Output(database: NamespaceServer.redacted(db), devices: dids.count, concurrency: concurrency, figures: figures))
        }
        try print(figures, title: "namespace benchmark: \(NamespaceServer.redacted(db)), \(dids.count) devices, concurrency \(concurrency)")
    }

    private func print(_ figures: [Figure], title: String) throws {
        if json {
            struct Output: Codable { var title: String; var concurrency: Int; var figures: [Figure] }
            return try printJSON(Output(title: title, concurrency: concurrency, figures: figures))
        }
        Swift.print(title)
        for f in figures {
            var line = f.name.padding(toLength: 78, withPad: " ", startingAt: 0)
            line += String(format: "%11.0f /s", f.perSecond)
            if let p50 = f.p50Milliseconds, let p99 = f.p99Milliseconds {
                line += p99 < 0.01 ? String(format: "   p50 %7.0f ns  p99 %7.0f ns", p50 * 1e6, p99 * 1e6)
                                   : String(format: "   p50 %7.3f ms  p99 %7.3f ms", p50, p99)
            } else {
                line += String(format: "   in %.3f s", f.seconds)
            }
            if let r = f.ratioToBaseline { line += String(format: "   p50 x%.2f of baseline", r) }
            Swift.print(line)
        }
    }

    static func figure(_ name: String, count: Int, since start: Date, latencies: [UInt64]?, baseline: Figure? = nil) -> Figure {
        let seconds = Date().timeIntervalSince(start)
        var f = Figure(name: name, count: count, seconds: seconds, perSecond: Double(count) / max(seconds, 1e-9))
        if let latencies, !latencies.isEmpty {
            let sorted = latencies.sorted()
            f.p50Milliseconds = Double(sorted[sorted.count / 2]) / 1e6
            f.p99Milliseconds = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 1e6
            if let b = baseline?.p50Milliseconds, b > 0 { f.ratioToBaseline = f.p50Milliseconds! / b }
        }
        return f
    }

    /// Runs `body(0..<count)` with at most `width` at once; the values in index order.
    static func parallel(count: Int, width: Int, _ body: @escaping @Sendable (Int) async throws -> UInt64) async throws -> [UInt64] {
        try await withThrowingTaskGroup(of: (Int, UInt64).self) { group in
            var results = [UInt64](repeating: 0, count: count)
            var next = 0
            while next < min(width, count) {
                let i = next
                group.addTask { (i, try await body(i)) }
                next += 1
            }
            while let (i, value) = try await group.next() {
                results[i] = value
                if next < count {
                    let j = next
                    group.addTask { (j, try await body(j)) }
                    next += 1
                }
            }
            return results
        }
    }
}
