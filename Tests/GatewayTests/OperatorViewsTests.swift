import ControlPlane
import Dispatch
import Engine
import Forwarding
import Foundation
import Gateway
import Telemetry
import Testing
import TestSupport
import Wire

/// What operators see of the proxy (issue "Operator experience"): `GET /v1/events` (the long
/// poll behind `tsmp events`), `GET /v1/migrations` without ids (`tsmp migrations`), the
/// migration metrics (promtool is the judge) and the text the CLI prints.
@Suite("Operator views: events, migration listing, migration metrics", .serialized)
struct OperatorViewsTests {
    typealias Proxy = ControlAPITests.Proxy

    /// Each proxy is a data-plane thread and an event loop: one for all the endpoint checks keeps
    /// a loaded two-core machine from timing out the clients of the tests running beside them.
    static let badQueryCases = [
        ("/v1/events?after=x&wait=1", "after must be"),
        ("/v1/events?after=1,2&wait=1", "after must be"),
        ("/v1/events?after=-1&wait=1", "after must be"),
        ("/v1/events?after=1&wait=31", "wait must be"),
        ("/v1/events?after=1&wait=nan", "wait must be"),
        ("/v1/migrations?limit=1001", "limit must be"),
        ("/v1/migrations?limit=-1", "limit must be"),
        ("/v1/migrations/timeline?id=x", "give id=N"),
    ]

    @Test("""
        events: the flow's creation is there from the start; a poll with nothing new waits, then answers \
        empty with the same cursor; no migrations listed yet; bad queries get a 400 naming the parameter
        """)
    func endpoints() async throws {
        let proxy = try await Proxy()
        _ = try await proxy.listing()
        let now = try await proxy.call { try $0.get("/v1/events", as: EventBatch.self) }
        let all = try await proxy.call { try $0.get("/v1/events?after=start&wait=2", as: EventBatch.self) }
        let started = Date()
        let idle = try await proxy.call { try $0.get("/v1/events?after=\(all.cursor)&wait=0.5", as: EventBatch.self) }
        let waited = Date().timeIntervalSince(started)
        let listing = try await proxy.call { try $0.get("/v1/migrations", as: MigrationListing.self) }
        let reports = try await proxy.call { try $0.get("/v1/migrations?id=5", as: MigrationReports.self) }
        let unknownPicture = try await proxy.call { try $0.request("GET", "/v1/migrations/timeline?id=5") }
        var answers: [(status: Int, body: [UInt8])] = []
        for (path, _) in Self.badQueryCases { answers.append(try await proxy.call { try $0.request("GET", path) }) }
        await proxy.stop()

        #expect(now.events.isEmpty && now.cursor == "1")
        let first = try #require(all.events.first)
        #expect(all.events.count == 1 && all.cursor == "1" && all.lost == 0)
        #expect(first.event.kind == .flowNew && first.event.seq == 1)
        #expect(first.event.device == IPEndpoint("10.1.0.2:40000"))
        #expect(first.event.server == IPEndpoint("10.2.0.2:8080"))
        #expect(abs(first.time - Date().timeIntervalSince1970) < 30)
        #expect(idle.events.isEmpty && idle.cursor == "1")
        #expect(waited >= 0.45 && waited < 5)
        #expect(listing.migrations.isEmpty && listing.running == 0)
        #expect(reports.migrations.isEmpty)
        #expect(unknownPicture.status == 404)
        for ((path, reason), answer) in zip(Self.badQueryCases, answers) {
            #expect(answer.status == 400, "\(path)")
            #expect(String(decoding: answer.body, as: UTF8.self).contains(reason), "\(path)")
        }
    }

    static func report(_ id: UInt64, _ phase: MigrationPhase, end: Double, cached: UInt64, reason: String? = nil) -> MigrationReport {
        MigrationReport(id: MigrationID(id), flow: FlowID(id + 10), oldDevice: IPEndpoint("10.1.0.2:40000")!,
                        target: MigrationTarget(address: IPv4Address(10, 3, 0, 2)), newDevice: phase == .spliced ? IPEndpoint("10.3.0.2:50000") : nil,
                        phase: phase, phases: [.init(phase: .requested, seconds: 0), .init(phase: .paused, seconds: 0.002),
                                               .init(phase: phase, seconds: end)],
                        cutOffsetToDevice: 2896, cutOffsetToServer: 120, bytesCached: cached, retransmissions: 0, timeouts: 0, reason: reason)
    }

    static var stats: MigrationStats {
        var s = MigrationStats()
        s.record(report(1, .spliced, end: 0.2, cached: 5000))
        s.record(report(2, .spliced, end: 0.04, cached: 0))
        s.record(report(3, .rolledBack, end: 10.5, cached: 100, reason: "late"))
        return s
    }

    @Test("migration metrics: results counted by label, histograms cumulative with +Inf, sum and count; the flow limit")
    func migrationMetricsText() {
        let text = MigrationMetrics.render(Self.stats, flowsLimit: 5000)
        #expect(text.contains("# TYPE tsmp_migrations_total counter\n"))
        #expect(text.contains("tsmp_migrations_total{result=\"spliced\"} 2\n"))
        #expect(text.contains("tsmp_migrations_total{result=\"rolled-back\"} 1\n"))
        #expect(text.contains("tsmp_migrations_total{result=\"aborted\"} 0\n"))
        #expect(text.contains("# TYPE tsmp_migration_duration_seconds histogram\n"))
        #expect(text.contains("tsmp_migration_duration_seconds_bucket{le=\"0.05\"} 1\n"))
        #expect(text.contains("tsmp_migration_duration_seconds_bucket{le=\"0.25\"} 2\n"))
        #expect(text.contains("tsmp_migration_duration_seconds_bucket{le=\"10\"} 2\n"))
        #expect(text.contains("tsmp_migration_duration_seconds_bucket{le=\"+Inf\"} 3\n"))
        #expect(text.contains("tsmp_migration_duration_seconds_count 3\n"))
        #expect(text.contains("tsmp_migration_stall_seconds_count 3\n"))
        #expect(text.contains("tsmp_migration_cache_bytes_bucket{le=\"0\"} 1\n"))
        #expect(text.contains("tsmp_migration_cache_bytes_sum 5100\n"))
        #expect(text.contains("# TYPE tsmp_flows_limit gauge\ntsmp_flows_limit 5000\n"))
    }

    @Test("promtool check metrics passes on the whole proxy text, migration metrics included",
          .enabled(if: Promtool.path != nil, "promtool is not installed (apt-get install prometheus)"))
    func promtoolClean() async throws {
        let text = String(decoding: EngineMetrics().render(EngineStatus.sum([]), deviceWriteErrors: 0), as: UTF8.self)
            + MigrationMetrics.render(Self.stats, flowsLimit: 5000)
        let said = try await Promtool.check(text)
        #expect(said.status == 0, "promtool: \(said.output)")
        #expect(said.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(said.output)")
    }

    @Test("the migrations table shows phase, ends, times, stall, cache, cuts and reason; events read like conntrack -E")
    func text() {
        let table = OperatorText.migrationTable(MigrationListing(migrations: [Self.report(1, .spliced, end: 0.2, cached: 5000),
                                                                              Self.report(2, .rolledBack, end: 10.5, cached: 0, reason: "too late")]))
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("ID  FLOW  PHASE"))
        #expect(lines[1].contains("spliced") && lines[1].contains("10.3.0.2:50000") && lines[1].contains("0.200s")
                && lines[1].contains("0.198s") && lines[1].contains("5000") && lines[1].contains("2896"))
        #expect(lines[2].contains("rolled-back") && lines[2].hasSuffix("too late") && lines[2].contains("10.3.0.2 "))
        #expect(lines.last == "0 running, 2 finished shown")
        let event = EventRecord(time: 86_400 * 20_000 + 3_723.456, shard: 0, event: JournalEvent(
            seq: 7, kind: .migrationPhase, nanoseconds: 1, flow: FlowID(3), migration: MigrationID(2), phase: .rolledBack, detail: "too late"))
        #expect(OperatorText.eventLine(event) == "01:02:03.456 [MIGRATION] migration 2 flow 3 rolled-back (too late)")
        let new = EventRecord(time: 0, shard: 0, event: JournalEvent(seq: 1, kind: .flowNew, nanoseconds: 1, flow: FlowID(3),
                                                                    device: IPEndpoint("10.1.0.2:40000"), server: IPEndpoint("10.2.0.2:80")))
        #expect(OperatorText.eventLine(new) == "00:00:00.000 [NEW] flow 3 10.1.0.2:40000 -> 10.2.0.2:80")
    }

    @Test("event cursors: one number per shard, digits only; wall-clock times from the monotonic clock")
    func cursors() {
        #expect(EventCursor.parse("3,4", shards: 2) == [3, 4])
        #expect(EventCursor.parse("3", shards: 2) == nil)
        #expect(EventCursor.parse("3,", shards: 2) == nil)
        #expect(EventCursor.parse("+3", shards: 1) == nil)
        #expect(EventCursor.parse("99999999999999999999999", shards: 1) == nil)
        #expect(EventCursor.format([1, 2]) == "1,2")
        #expect(EventCursor.wallClock(4_000_000_000, monotonicNow: 5_000_000_000, realNow: 100) == 99)
    }
}
