import Wire

/// One thing that happened in the engine that an operator may want to follow live
/// (`tsmp events`, like `conntrack -E`): a flow created or removed, a migration entering a
/// phase. Numbered in order per engine (`seq`), timed on the engine's clock.
public struct JournalEvent: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case flowNew = "flow-new"
        case flowDestroy = "flow-destroy"
        case migrationPhase = "migration-phase"
    }
    public var seq: UInt64
    public var kind: Kind
    /// The engine's clock (`Instant`, monotonic) when it happened.
    public var nanoseconds: UInt64
    public var flow: FlowID
    public var device: IPEndpoint?
    public var server: IPEndpoint?
    public var migration: MigrationID?
    public var phase: MigrationPhase?
    /// flow-destroy: "closed" (FIN/RST) or "expired" (idle), timed at the flow's last packet;
    /// a migration's end: its reason.
    public var detail: String?

    public init(seq: UInt64, kind: Kind, nanoseconds: UInt64, flow: FlowID, device: IPEndpoint? = nil,
                server: IPEndpoint? = nil, migration: MigrationID? = nil, phase: MigrationPhase? = nil, detail: String? = nil) {
        self.seq = seq; self.kind = kind; self.nanoseconds = nanoseconds; self.flow = flow; self.device = device
        self.server = server; self.migration = migration; self.phase = phase; self.detail = detail
    }
}

/// The engine's last `capacity` events in a ring: appending never allocates once full and
/// costs the same whether anyone listens or not; a reader that falls behind is told how many
/// it lost (`since`), never blocks the engine.
public struct EventJournal: Sendable {
    public let capacity: Int
    private var ring: [JournalEvent] = []
    /// The number the next event gets; the first is 1, so "after 0" means from the start.
    public private(set) var nextSeq: UInt64 = 1
    /// Phases already journaled per running migration (`note`).
    private var journaledPhases: [MigrationID: Int] = [:]

    public init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
        ring.reserveCapacity(self.capacity)
    }

    /// The oldest sequence number still held.
    public var oldestSeq: UInt64 { nextSeq - UInt64(ring.count) }

    public mutating func append(_ kind: JournalEvent.Kind, at now: Instant, flow: FlowID, device: IPEndpoint? = nil,
                                server: IPEndpoint? = nil, migration: MigrationID? = nil, phase: MigrationPhase? = nil,
                                detail: String? = nil) {
        let event = JournalEvent(seq: nextSeq, kind: kind, nanoseconds: now.nanoseconds, flow: flow, device: device,
                                server: server, migration: migration, phase: phase, detail: detail)
        if ring.count < capacity { ring.append(event) } else { ring[Int((nextSeq - 1) % UInt64(capacity))] = event }
        nextSeq += 1
    }

    /// Events numbered after `after`, at most `limit`, oldest first; `lost`: events after
    /// `after` that the ring no longer holds (the reader fell more than `capacity` behind).
    public func since(_ after: UInt64, limit: Int = 1024) -> (events: [JournalEvent], lost: UInt64) {
        let first = max(after + 1, oldestSeq)
        let lost = first > after + 1 ? first - (after + 1) : 0
        guard first < nextSeq else { return ([], lost) }
        let end = min(nextSeq, first + UInt64(max(0, limit)))
        let c = UInt64(capacity)
        return ((first..<end).map { ring[Int(($0 - 1) % c)] }, lost)
    }

    /// A migration that left without finishing (its flow vanished): nothing more to note.
    mutating func forget(_ id: MigrationID) { journaledPhases[id] = nil }

    /// Migrations with phases noted and not yet finished (bounded by the running ones).
    var notedMigrations: Int { journaledPhases.count }

    /// Journals the phases `m` entered since it was last noted (a migration's phases are
    /// appended in order, so the count says which are new); a finished migration is forgotten.
    mutating func note(_ m: Migration) {
        let done = journaledPhases[m.id] ?? 0
        for (phase, at) in m.phaseTimes.dropFirst(done) {
            let ended = phase == .spliced || phase == .rolledBack || phase == .aborted
            append(.migrationPhase, at: at, flow: m.flowID, migration: m.id, phase: phase, detail: ended ? m.reason : nil)
        }
        if m.reportedPhase == .spliced || m.reportedPhase == .rolledBack || m.reportedPhase == .aborted {
            journaledPhases[m.id] = nil
        } else {
            journaledPhases[m.id] = m.phaseTimes.count
        }
    }
}
