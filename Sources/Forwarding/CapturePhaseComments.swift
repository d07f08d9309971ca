import Engine
import PacketIO
import Wire

/// The migrations' phases as comments of a `--capture` pcapng (issue 17): each phase a
/// migration enters (the engine's journal, `JournalEvent.migrationPhase`) becomes the comment
/// "tsmp: migration M flow F phase P (...)" on the first packet captured afterwards that
/// belongs to the flow (an endpoint of the old device, the new device or the NAT side), so
/// Wireshark shows it right where it happened (`frame.comment`, "Expert Info: Comment").
/// pcapng has no comment block of its own that tools show, hence the packet.
///
/// Invariants: the comments of one flow come out in the order its phases were entered; a
/// comment whose flow sends nothing for `staleAfterNanoseconds` goes on the next packet
/// captured, whatever its flow (it names the flow); at most `maximumPending` wait (older ones
/// are left out, and counted). Reading the journal costs one comparison per batch when
/// nothing happened. Not thread-safe: `CaptureRecorder` holds it under its lock.
struct CapturePhaseComments {
    struct Pending: Equatable {
        var text: String
        /// Packets with one of these as source or destination belong to the flow.
        var endpoints: [IPEndpoint]
        /// Wall-clock time it was queued (the capture's clock).
        var queuedAt: UInt64
    }

    static let staleAfterNanoseconds: UInt64 = 1_000_000_000
    static let maximumPending = 256

    private(set) var pending: [Pending] = []
    /// Comments left out because too many waited.
    private(set) var dropped = 0
    /// The last journal sequence number read, per shard (engine).
    private var cursors: [Int: UInt64] = [:]

    /// Queues a comment for each migration phase `engine` journaled since the last call (on the
    /// engine's loop thread: it reads the engine).
    mutating func collect(from engine: SpliceEngine, now: Instant) {
        let shard = engine.shard.index
        let cursor = cursors[shard] ?? 0
        guard engine.lastEventSeq != cursor else { return }
        let (events, _, last) = engine.events(after: cursor)
        cursors[shard] = last
        let monotonic = Syscall.monotonicNow()
        for event in events where event.kind == .migrationPhase {
            guard let id = event.migration, let phase = event.phase else { continue }
            let report = engine.migrationReport(id, now: monotonic)
            var endpoints = [event.device, report?.oldDevice, report?.newDevice].compactMap { $0 }
            if let sides = engine.flowEndpoints(event.flow) { endpoints += [sides.device, sides.nat] }
            queue(Self.text(migration: id, flow: event.flow, phase: phase, report: report, detail: event.detail),
                  endpoints: endpoints, now: now)
        }
    }

    /// Queues one comment (tests; `collect`).
    mutating func queue(_ text: String, endpoints: [IPEndpoint], now: Instant) {
        if pending.count >= Self.maximumPending {
            pending.removeFirst()
            dropped += 1
        }
        pending.append(Pending(text: text, endpoints: endpoints, queuedAt: now.nanoseconds))
    }

    /// The comments that go on `packet`, captured at `now`, in the order they were queued:
    /// those of its flow, and those that waited too long for one.
    mutating func take(for packet: UnsafeRawBufferPointer, now: Instant) -> [String] {
        guard !pending.isEmpty else { return [] }
        let peek = HeaderPeek(packet).tcpEndpoints
        var out: [String] = []
        pending.removeAll { p in
            let mine = peek.map { p.endpoints.contains($0.source) || p.endpoints.contains($0.destination) } ?? false
            let stale = now.nanoseconds >= p.queuedAt &+ Self.staleAfterNanoseconds
            if mine || stale { out.append(p.text) }
            return mine || stale
        }
        return out
    }

    /// "tsmp: migration M flow F phase P (details)": the target when requested, the cut
    /// offsets once the cut is made, the new device once connected, the bytes from the cache
    /// once drained, the reason of an end.
    static func text(migration: MigrationID, flow: FlowID, phase: MigrationPhase, report: MigrationReport?,
                     detail: String?) -> String {
        var details: [String] = []
        if let r = report {
            switch phase {
            case .requested:
                details.append("old device \(r.oldDevice), to \(r.target)")
            case .paused:
                details.append("zero window to the server and the old device")
            case .oldDeviceCut, .spliced:
                if let d = r.cutOffsetToDevice, let s = r.cutOffsetToServer {
                    details.append("cut offsets: to device \(d) B, to server \(s) B")
                }
            case .newDeviceConnected:
                if let n = r.newDevice { details.append("new device \(n)") }
            case .cacheDrained:
                details.append("\(r.bytesCached) B delivered from the cache")
            case .rolledBack, .aborted:
                break
            }
        }
        if let detail, !detail.isEmpty { details.append(detail) }
        let base = "tsmp: migration \(migration) flow \(flow) phase \(phase.rawValue)"
        return details.isEmpty ? base : base + " (" + details.joined(separator: "; ") + ")"
    }
}
