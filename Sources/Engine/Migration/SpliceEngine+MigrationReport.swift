import Wire

/// What a migration reports (`tsmp migrate`, the device API), running or finished.
extension SpliceEngine {
    /// Keeps the last 1000 finished migrations' reports.
    func recordFinished(_ report: MigrationReport) {
        finishedMigrations[report.id] = report
        migrationStats.record(report)
        finishedOrder.append(report.id)
        if finishedOrder.count > 1000 { finishedMigrations[finishedOrder.removeFirst()] = nil }
    }

    /// The report of `m` as it stands (its last phase entered is the one reported).
    func report(_ m: Migration, now: Instant) -> MigrationReport {
        let f = table.slot(id: m.flowID).flatMap { table[slot: $0] }
        func secs(_ t: Instant) -> Double { Double(t.nanoseconds &- m.requestedAt.nanoseconds) / 1e9 }
        var cutToDevice: UInt64?
        var cutToServer: UInt64?
        if let f, let c = m.cutOffsets {
            cutToDevice = UInt64(f.streamStartToDevice.distance(to: c.toDevice))
            cutToServer = UInt64(f.streamStartToServer.distance(to: c.toServerView))
        }
        let freeze = m.freeze
        return MigrationReport(
            id: m.id, flow: m.flowID, oldDevice: freeze?.oldDevice ?? f?.device ?? IPEndpoint(config.nat, 0),
            target: m.target, newDevice: freeze?.newDevice?.endpoint, phase: m.reportedPhase,
            phases: m.phaseTimes.map { .init(phase: $0.0, seconds: secs($0.1)) },
            cutOffsetToDevice: cutToDevice, cutOffsetToServer: cutToServer, bytesCached: freeze?.bytesCached ?? 0,
            retransmissions: m.sender?.retransmissions ?? 0, timeouts: m.sender?.timeouts ?? 0, reason: m.reason)
    }
}
