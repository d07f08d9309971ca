@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// What operators see of migrations (issue "Operator experience"): the event journal's ring,
/// the listing of running and finished migrations, the statistics behind the metrics.
@Suite("Migration observability: events, listing, statistics")
struct MigrationObservabilityTests {
    typealias H = MigrationHarness

    @Test("the journal numbers events from 1, keeps the last `capacity`, and says how many a late reader lost")
    func journalRing() {
        var j = EventJournal(capacity: 4)
        #expect(j.since(0).events.isEmpty && j.since(0).lost == 0)
        for i in 1...6 { j.append(.flowNew, at: Instant(nanoseconds: UInt64(i)), flow: FlowID(UInt64(i))) }
        #expect(j.nextSeq == 7 && j.oldestSeq == 3)
        let late = j.since(0)
        #expect(late.events.map(\.seq) == [3, 4, 5, 6])
        #expect(late.events.map(\.flow) == [3, 4, 5, 6].map { FlowID($0) })
        #expect(late.lost == 2)
        let current = j.since(4)
        #expect(current.events.map(\.seq) == [5, 6] && current.lost == 0)
        #expect(j.since(6).events.isEmpty && j.since(6).lost == 0)
        #expect(j.since(2, limit: 1).events.map(\.seq) == [3])
        // A cursor from the future (another proxy's) gives nothing, and no underflow.
        #expect(j.since(1000).events.isEmpty)
    }

    @Test("a rolled-back migration: each phase is journaled once, in order, with the flow's creation before")
    func phasesJournaled() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 2 * 1448)
        let (mid, _) = try h.migrate(deadline: .seconds(3), settleWait: .seconds(1))
        h.advance(milliseconds: 1000)
        _ = try h.timers()
        h.advance(milliseconds: 2000)
        _ = try h.timers()
        _ = h.send(h.fromLaptop(at: 120, ack: 4 * 1448, window: 480))
        #expect(h.report(mid)?.phase == .rolledBack)
        let events = h.engine.events(after: 0).events
        #expect(events.first?.kind == .flowNew)
        #expect(events.first?.device == MigrationLab.laptop)
        let phases = events.filter { $0.kind == .migrationPhase }
        #expect(phases.map(\.phase) == [.requested, .paused, .oldDeviceCut, .rolledBack])
        #expect(phases.allSatisfy { $0.migration == mid })
        #expect(phases.last?.detail == "the new device did not connect before the deadline")
        #expect(events.map(\.seq) == Array(1...UInt64(events.count)))
        // Times are the engine's: the cut one second after the pause.
        #expect(phases[2].nanoseconds - phases[1].nanoseconds == 1_000_000_000)
        // The listing shows it finished; the statistics counted it once.
        let listing = h.engine.migrationListing(limit: 10, now: h.now)
        #expect(listing.map(\.id) == [mid] && listing.first?.phase == .rolledBack)
        #expect(h.engine.migrationListing(limit: 0, now: h.now).isEmpty)
        let stats = h.engine.migrationStats
        #expect(stats.results == ["rolled-back": 1])
        #expect(stats.duration.count == 1 && stats.stall.count == 1 && stats.cacheBytes.count == 1)
        #expect(abs(stats.stall.sum - 3.0) < 1e-9)
        #expect(h.engine.lastEventSeq == events.last?.seq)
        // Nothing stays noted for a finished migration.
        #expect(h.engine.journal.notedMigrations == 0)
        // Its timeline: the laptop's acks from the cut, the cache sent back to it (the rollback).
        let timeline = try #require(h.engine.migrationTimeline(mid))
        let acks = timeline.points.filter { $0.series == .oldDeviceAck }
        let back = timeline.points.filter { $0.series == .proxyToOldDevice }
        #expect(acks.last?.offset == UInt64(4 * 1448))
        #expect(back.map(\.offset) == [UInt64(2 * 1448), UInt64(3 * 1448)] && back.allSatisfy { $0.length == 1448 })
        #expect(back.allSatisfy { abs($0.seconds - 3.0) < 1e-9 })
        #expect(timeline.points.allSatisfy { $0.series != .newDeviceAck && $0.series != .proxyToNewDevice })
    }

    @Test("a running migration is listed with its phase; events after a cursor are only the new ones")
    func runningListed() throws {
        let h = H.established(downloaded: 4 * 1448, acked: 4 * 1448)
        let before = h.engine.lastEventSeq
        let (mid, _) = try h.migrate()
        let listing = h.engine.migrationListing(limit: 0, now: h.now)
        #expect(listing.map(\.id) == [mid] && listing.first?.phase == .paused)
        let new = h.engine.events(after: before)
        #expect(new.events.map(\.phase) == [.requested, .paused])
        #expect(new.last == h.engine.lastEventSeq)
        #expect(h.engine.events(after: new.last).events.isEmpty)
        #expect(h.engine.migrationStats.results.isEmpty)
        #expect(h.engine.journal.notedMigrations == 1)
    }

    @Test("histogram buckets: values on a bound count in it; cumulative ends at +Inf with the count; merge adds")
    func histogram() {
        var a = HistogramCounts(bounds: [1, 10])
        for v in [0.5, 1, 3, 10, 11, .nan] { a.observe(v) }
        #expect(a.counts == [2, 2, 1])
        #expect(a.cumulative.map(\.count) == [2, 4, 5])
        #expect(a.cumulative.last?.le == .infinity)
        #expect(a.count == 5 && a.sum == 25.5)
        var b = HistogramCounts(bounds: [1, 10])
        b.observe(2)
        b.merge(a)
        #expect(b.counts == [2, 3, 1] && b.sum == 27.5)
        var other = HistogramCounts(bounds: [5])
        other.merge(a)
        #expect(other.count == 0)
    }

    @Test("statistics ignore unfinished reports and sum over shards")
    func statsSum() {
        func report(_ phase: MigrationPhase, end: Double) -> MigrationReport {
            MigrationReport(id: MigrationID(1), flow: FlowID(1), oldDevice: MigrationLab.laptop,
                            target: MigrationTarget(address: MigrationLab.phoneAddress), newDevice: nil, phase: phase,
                            phases: [.init(phase: .requested, seconds: 0), .init(phase: .paused, seconds: 0.001),
                                     .init(phase: phase, seconds: end)],
                            cutOffsetToDevice: 10, cutOffsetToServer: 20, bytesCached: 5000, retransmissions: 0, timeouts: 0, reason: nil)
        }
        var s1 = MigrationStats(), s2 = MigrationStats()
        s1.record(report(.spliced, end: 0.2))
        s1.record(report(.cacheDrained, end: 0.1))
        s2.record(report(.spliced, end: 0.3))
        s2.record(report(.aborted, end: 5))
        let t = MigrationStats.sum([s1, s2])
        #expect(t.results == ["spliced": 2, "aborted": 1])
        #expect(t.duration.count == 3 && abs(t.duration.sum - 5.5) < 1e-9)
        #expect(abs(t.stall.sum - (5.5 - 0.003)) < 1e-9)
        #expect(t.cacheBytes.counts[3] == 3) // 5000 bytes: in (4096, 16384], the fourth bucket
    }
}
