import Wire

/// What the operator's views read (`tsmp migrations`, `tsmp events`, the metrics): running
/// and recent migrations, the event journal, the finished migrations' statistics.
extension SpliceEngine {
    /// Running migrations and the last `limit` finished ones (the engine keeps 1000), oldest
    /// first by id.
    public func migrationListing(limit: Int, now: Instant) -> [MigrationReport] {
        let running = migrations.values.map { report($0, now: now) }
        let finished = finishedOrder.suffix(max(0, limit)).compactMap { finishedMigrations[$0] }
        return (running + finished).sorted { $0.id < $1.id }
    }

    /// Events after `after` (see `EventJournal.since`) and the sequence number to ask after next.
    public func events(after: UInt64, limit: Int = 1024) -> (events: [JournalEvent], lost: UInt64, last: UInt64) {
        let (events, lost) = journal.since(after, limit: limit)
        return (events, lost, events.last?.seq ?? journal.nextSeq - 1)
    }

    /// The last event's sequence number (where a reader that wants only new events starts).
    public var lastEventSeq: UInt64 { journal.nextSeq - 1 }

    /// Journals a migration's new phases (`EventJournal.note`).
    func journalPhases(_ m: Migration) { journal.note(m) }
    func journalPhases(of id: MigrationID) { if let m = migrations[id] { journal.note(m) } }
}
