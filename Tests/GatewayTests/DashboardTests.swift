import ControlPlane
import Dispatch
import Engine
import Foundation
import Forwarding
@testable import Gateway
import Logging
import NIOPosix
import PacketIO
import Synchronization
import Testing
import TestSupport
import Wire

/// The read-only dashboard on the metrics address (issue 17): the page and its JSON and SVG
/// routes answer with the right status and content type, nothing reachable through it starts
/// or steers a migration, unknown paths are 404s, and a request for another host name (DNS
/// rebinding) is refused.
@Suite("Dashboard routes", .serialized)
struct DashboardTests {
    /// An engine stand-in with one flow and one finished migration, counting the calls that
    /// would change something.
    final class StubEngine: EngineAccess, @unchecked Sendable {
        let mutations = Mutex(0)
        static let report = MigrationSVGTests.report

        func listing() async -> FlowListing {
            let server = endpoint("10.2.0.2:8080")
            var flows: [FlowSummary] = []
            for i: UInt16 in 1...3 {
                let device = IPEndpoint(address("10.1.0.2"), 40000 + i), nat = IPEndpoint(address("10.2.0.1"), 62000 + i)
                let inKernel: Bool? = i == 2 ? true : nil
                flows.append(FlowSummary(id: FlowID(UInt64(i)), device: device, original: server, nat: nat, server: server,
                                         state: .established, packetsToServer: 3, bytesToServer: 300, packetsToDevice: 5,
                                         bytesToDevice: 5000, inFlightBytes: 0, ageSeconds: 2, idleSeconds: 0.5,
                                         migration: nil, migrationPhase: nil, inKernel: inKernel))
            }
            return FlowListing(flows: flows, status: EngineStatus.sum([]))
        }
        func engineStatus() async -> EngineStatus { EngineStatus.sum([]) }
        func startMigrations(_ flows: [FlowID], to target: MigrationTarget, deadline: Duration) async -> [MigrationStartResult] {
            mutations.withLock { $0 += 1 }
            return []
        }
        func bindMigrationSourcePort(_ port: UInt16, to migration: MigrationID) async -> Result<Void, MigrationRefusal> {
            mutations.withLock { $0 += 1 }
            return .failure(.unknownMigration(migration))
        }
        func reports(_ ids: [MigrationID]) async -> [MigrationReport] { ids.contains(Self.report.id) ? [Self.report] : [] }
        func migrationListing(limit: Int) async -> [MigrationReport] { [Self.report] }
        func timeline(_ id: MigrationID) async -> MigrationTimeline? {
            MigrationTimeline(points: [.init(seconds: 0.01, series: .serverData, offset: 10_000, length: 1448)], dropped: 0)
        }
    }

    /// What one exchange gave: status, content type, body.
    struct Answer {
        var status: Int
        var contentType: String
        var body: String
    }

    /// One request over plain TCP to 127.0.0.1:`port` (`Connection: close`), on a Dispatch thread.
    static func exchange(_ port: Int, _ method: String, _ path: String, host: String = "127.0.0.1", body: String = "") async throws -> Answer {
        let request = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let raw = try await withCheckedThrowingContinuation { (c: CheckedContinuation<[UInt8], any Error>) in
            DispatchQueue.global().async {
                c.resume(with: Result { () throws -> [UInt8] in
                    let fd = try Syscall.connectTCP(0x7F00_0001, port: UInt16(port), timeoutSeconds: 10)
                    defer { try? Syscall.close(fd) }
                    try Array(request.utf8).withUnsafeBytes { try Syscall.writeAll(fd, $0) }
                    return try Syscall.readToEnd(fd)
                })
            }
        }
        let text = String(decoding: raw, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first?.components(separatedBy: "\r\n") ?? []
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? -1
        let type = head.first { $0.lowercased().hasPrefix("content-type:") }.map { String($0.dropFirst(13)).trimmingCharacters(in: .whitespaces) }
        return Answer(status: status, contentType: type ?? "", body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test("""
        the page, flows, migrations and a migration's picture answer 200 with their content types; bad queries 400, \
        an unknown migration 404, media 404 without the relay; no route changes anything, unknown paths are 404s, \
        other host names 421
        """)
    func routes() async throws {
        let engine = StubEngine()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let endpoint = try await HTTPEndpoint.start(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test"),
                                                    routes: Dashboard.routes(engine: engine))
        let port = try #require(endpoint.localAddress?.port)
        func get(_ path: String, host: String = "127.0.0.1") async throws -> Answer { try await Self.exchange(port, "GET", path, host: host) }

        let page = try await get("/"), again = try await get("/dashboard")
        let flows = try await get("/v1/flows"), fewer = try await get("/v1/flows?limit=1")
        let migrations = try await get("/v1/migrations?limit=5")
        let svg = try await get("/v1/migrations/svg?id=4")
        let unknownMigration = try await get("/v1/migrations/svg?id=5")
        var bad: [Answer] = []
        for path in ["/v1/migrations/svg", "/v1/migrations/svg?id=x", "/v1/flows?limit=-1", "/v1/flows?limit=10001", "/v1/migrations?limit=x"] {
            bad.append(try await get(path))
        }
        let body = #"{"flows":[1],"toAddress":"10.3.0.2","deadlineSeconds":5}"#
        var refusedMutations: [Answer] = []
        for (method, path) in [("POST", "/v1/migrations"), ("POST", "/v1/mfr"), ("POST", "/v1/mtr"), ("PUT", "/v1/flows"),
                               ("DELETE", "/v1/migrations"), ("POST", "/")] {
            refusedMutations.append(try await Self.exchange(port, method, path, body: body))
        }
        var unknown: [Answer] = []
        for path in ["/v1/status", "/v1/events", "/v1/migrations/timeline?id=4", "/metrics", "/dashboard/x", "/../etc/passwd",
                     "/v1/migrations/4/svg", "/index.html"] {
            unknown.append(try await get(path))
        }
        let noMedia = try await get("/v1/media")
        let rebound = try await get("/v1/flows", host: "attacker.example:9464")
        let byName = try await get("/", host: "localhost:9464")
        await endpoint.close()
        try await group.shutdownGracefully()

        #expect(page.status == 200 && page.contentType == "text/html; charset=utf-8")
        #expect(again.status == 200 && again.body == page.body)
        #expect(page.body.contains("<title>tsmp proxy</title>") && page.body.contains("Content-Security-Policy"))
        // Self-contained: no address of another server anywhere in the page.
        #expect(!page.body.contains("http:") && !page.body.contains("https:") && !page.body.contains("src=\"//"))
        for route in ["/v1/flows?limit=", "/v1/migrations?limit=", "/v1/migrations/svg?id=", "/v1/media"] { #expect(page.body.contains(route), "\(route)") }

        #expect(flows.status == 200 && flows.contentType == "application/json")
        let listed = try JSONDecoder().decode(DashboardFlows.self, from: Data(flows.body.utf8))
        #expect(listed.total == 3 && listed.flows.map(\.id) == [3, 2, 1], "newest first")
        let one = try JSONDecoder().decode(DashboardFlows.self, from: Data(fewer.body.utf8))
        #expect(one.total == 3 && one.flows.map(\.id) == [3])
        #expect(migrations.status == 200)
        #expect(try JSONDecoder().decode(MigrationListing.self, from: Data(migrations.body.utf8)).migrations.map(\.id) == [4])
        #expect(svg.status == 200 && svg.contentType == "image/svg+xml; charset=utf-8")
        let picture = try MigrationSVGTests.parse(svg.body)
        #expect(picture.root == "svg" && picture.phases.contains("spliced") && picture.series["server-data"]?.marks == 1)
        #expect(unknownMigration.status == 404)
        #expect(bad.map(\.status) == [400, 400, 400, 400, 400], "\(bad.map(\.body))")

        #expect(refusedMutations.allSatisfy { $0.status == 404 || $0.status == 405 }, "\(refusedMutations.map(\.status))")
        #expect(engine.mutations.withLock { $0 } == 0)
        #expect(Dashboard.routes(engine: engine).keys.allSatisfy { $0.hasPrefix("GET ") })
        #expect(unknown.allSatisfy { $0.status == 404 }, "\(unknown.map(\.status))")
        #expect(rebound.status == 421 && rebound.body.contains("attacker.example"))
        #expect(byName.status == 200)
        // Without the media relay: 404 with the reason (the page then hides its media section).
        #expect(noMedia.status == 404 && noMedia.body.contains("relays no media"), "\(noMedia.body)")
    }

    @Test("--no-dashboard: the metrics address serves /metrics alone, every dashboard route is a 404")
    func metricsAlone() async throws {
        let engine = StubEngine()
        let metrics: HTTPEndpoint.Handler = { _ in HTTPEndpoint.Response(contentType: "text/plain; version=0.0.4", text: "tsmp_flows 3\n") }
        #expect(Set(Dashboard.metricsAddressRoutes(metrics: metrics, dashboard: true, engine: engine).keys)
            == Set(Dashboard.routes(engine: engine).keys).union(["GET /metrics"]))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let endpoint = try await HTTPEndpoint.start(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test"),
                                                    routes: Dashboard.metricsAddressRoutes(metrics: metrics, dashboard: false, engine: engine))
        let port = try #require(endpoint.localAddress?.port)
        let scraped = try await Self.exchange(port, "GET", "/metrics")
        var hidden: [Answer] = []
        for path in ["/", "/dashboard", "/v1/flows", "/v1/migrations", "/v1/migrations/svg?id=4"] {
            hidden.append(try await Self.exchange(port, "GET", path))
        }
        await endpoint.close()
        try await group.shutdownGracefully()
        #expect(scraped.status == 200 && scraped.body == "tsmp_flows 3\n")
        #expect(hidden.allSatisfy { $0.status == 404 }, "\(hidden.map(\.status))")
    }

    @Test("Host: an IPv4 address or localhost, with or without a port, is served; names, odd ports and IPv6 are not",
          arguments: [("127.0.0.1", true), ("127.0.0.1:9464", true), ("10.0.0.1:80", true), ("LOCALHOST:9464", true), ("localhost", true),
                      ("gateway.lan:9464", false), ("localhost.attacker.example", false), ("127.0.0.1:+80", false),
                      ("127.0.0.1:99999", false), ("127.0.0.1:", false), ("[::1]:9464", false), ("", false), ("1.2.3.4.5", false)])
    func hosts(host: String, served: Bool) {
        #expect((Dashboard.hostRefusal(host) == nil) == served)
    }

    @Test("no Host header (HTTP/1.0): served")
    func noHost() { #expect(Dashboard.hostRefusal(nil) == nil) }
}
