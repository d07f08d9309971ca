/// One media session's migration (SMP draft §5.3-§5.4) as a state machine: requested ->
/// new-player-ready -> waiting-for-gop -> switched -> done, or rolled-back. Driven by
/// `handle(_:now:)` with the caller's clock; no I/O.
///
/// Invariants:
/// - Every `.rtp` input gets exactly one `.route` action, first in the returned list.
/// - Before the switch every packet goes to the old player; from the switch packet (the first
///   packet of a GOP after PLAY) on, every packet goes to the new player with one continuity
///   rewrite, so the new player's first packet starts a GOP and carries the promised seq/rtptime.
/// - A finished migration (done, rolled back) changes no more; `.finished` is emitted once.
public struct MediaMigration: Sendable {
    public let config: MediaMigrationConfig
    public let requestedAt: MediaTime
    public private(set) var phase: MediaMigrationPhase = .requested
    private var phaseTimes: [(MediaMigrationPhase, MediaTime)]
    private var playingAt: MediaTime?
    private var switchedAt: MediaTime?
    private var start: RTPStreamStart?
    public private(set) var continuity: RTPContinuity?
    private var switchPacket: MediaPacketInfo?
    private var framesSkipped = 0
    private var lastSkippedTimestamp: UInt32?
    private var reason: String?

    public init(config: MediaMigrationConfig = MediaMigrationConfig(), requestedAt: MediaTime) {
        self.config = config
        self.requestedAt = requestedAt
        phaseTimes = [(.requested, requestedAt)]
    }

    public var isFinished: Bool { phase == .done || phase == .rolledBack }

    public mutating func handle(_ input: MediaMigrationInput, now: MediaTime) -> [MediaMigrationAction] {
        switch (phase, input) {
        case (_, .rtp(let packet)):
            return route(packet, now: now)

        case (.requested, .newPlayerSetUp):
            return enter(.newPlayerReady, now: now)
        case (.requested, .newPlayerPlaying(let s)), (.newPlayerReady, .newPlayerPlaying(let s)):
            start = s
            playingAt = now
            return (phase == .requested ? enter(.newPlayerReady, now: now) : []) + enter(.waitingForGOP, now: now)

        case (.requested, .cancel(let why)), (.newPlayerReady, .cancel(let why)), (.waitingForGOP, .cancel(let why)):
            return rollBack(why, now: now)
        case (.requested, .tick), (.newPlayerReady, .tick):
            guard now >= requestedAt.adding(config.readyTimeout) else { return [] }
            return rollBack("the new player did not set up and play within \(Double(config.readyTimeout.nanoseconds) / 1e9)s", now: now)
        case (.waitingForGOP, .tick):
            guard let playingAt, now >= playingAt.adding(config.gopTimeout) else { return [] }
            return rollBack("no GOP started within \(Double(config.gopTimeout.nanoseconds) / 1e9)s of PLAY", now: now)

        case (.switched, .oldPlayerEnded):
            return finish(now: now)
        case (.switched, .tick):
            guard let switchedAt, now >= switchedAt.adding(config.oldPlayerGrace) else { return [] }
            return finish(now: now)

        default:
            // Repeated or late inputs (a second SETUP, an end after done) change nothing.
            return []
        }
    }

    /// Where a packet goes, and the switch when it is the first packet of a GOP after PLAY.
    private mutating func route(_ packet: MediaPacketInfo, now: MediaTime) -> [MediaMigrationAction] {
        switch phase {
        case .requested, .newPlayerReady, .rolledBack:
            return [.route(.oldPlayer)]
        case .waitingForGOP:
            guard packet.isGOPStart, let start else {
                if lastSkippedTimestamp != packet.timestamp {
                    lastSkippedTimestamp = packet.timestamp
                    framesSkipped += 1
                }
                return [.route(.oldPlayer)]
            }
            let rewrite = RTPContinuity(switchSequence: packet.sequenceNumber, switchTimestamp: packet.timestamp, to: start)
            continuity = rewrite
            switchPacket = packet
            switchedAt = now
            return [.route(.newPlayer(rewrite))] + enter(.switched, now: now) + [.endOldPlayer]
        case .switched, .done:
            guard let continuity else { return [.route(.oldPlayer)] }
            return [.route(.newPlayer(continuity))]
        }
    }

    private mutating func enter(_ next: MediaMigrationPhase, now: MediaTime) -> [MediaMigrationAction] {
        phase = next
        phaseTimes.append((next, now))
        return [.phaseChanged(next)]
    }

    private mutating func rollBack(_ why: String, now: MediaTime) -> [MediaMigrationAction] {
        let hadNewPlayer = phase != .requested
        reason = why
        var actions = enter(.rolledBack, now: now)
        if hadNewPlayer { actions.insert(.endNewPlayer(reason: why), at: 0) }
        return actions + [.finished(report)]
    }

    private mutating func finish(now: MediaTime) -> [MediaMigrationAction] {
        enter(.done, now: now) + [.finished(report)]
    }

    public var report: MediaMigrationReport {
        MediaMigrationReport(
            phase: phase,
            phases: phaseTimes.map { .init(phase: $0.0, seconds: $0.1.seconds(since: requestedAt)) },
            switchedAtSequence: switchPacket?.sequenceNumber, switchedAtTimestamp: switchPacket?.timestamp,
            framesSkipped: framesSkipped, reason: reason)
    }
}
