import Wire

/// One migration of a flow (DESIGN §6) as the engine holds it beside the flow: where it is
/// (`phase`, which carries what that phase needs) and what it reports.
///
/// Phases, in order:
/// - `awaitingState`: asked for a flow just back from the kernel path; nothing is frozen yet
///   (the flow's sequence state must be learned first). The new device's SYN may be held.
/// - `paused`: the flow is frozen (zero windows, server data cached and pre-acked); waits
///   for both directions to settle.
/// - `cut`: the cut offsets are fixed; waits for (or answers) the new device's handshake.
/// - `resuming`: the new device completed its handshake; the emulated sender delivers the
///   cache to it. All acknowledged: the flow is spliced to it.
/// - `rollingBack`: the new device did not come or failed; the emulated sender delivers the
///   cache to the old device.
/// A migration leaves the engine's table when it ends (`MigrationPhase.spliced`, `.rolledBack`,
/// `.aborted`); its report stays (`SpliceEngine.recordFinished`).
struct Migration: Sendable {
    let id: MigrationID
    let flowID: FlowID
    var target: MigrationTarget
    let requestedAt: Instant
    /// How long it may take from `requestedAt`, and how long the cut waits for both
    /// directions to settle.
    let allowed: Duration
    let settleWait: Duration
    var phase: Phase
    /// Every reported phase entered, with when (the report's timeline).
    private(set) var phaseTimes: [(MigrationPhase, Instant)]
    /// Why it went back (or ended), when it did.
    var reason: String?
    /// Taken over from the checkpoint of a proxy that stopped during it: it only goes back to
    /// the old device, once the flow's state is learned again (`SpliceEngine+RestoredMigration`).
    var restoring: RestoringState?
    /// The end of the bytes held for the flow that the checkpoint has (`CheckpointCodec.held`);
    /// nil: none yet.
    var checkpointedCopyEnd: SeqNumber?

    enum Phase: Sendable {
        case awaitingState(AwaitingState)
        case paused(Freeze)
        case cut(Freeze, CutOffsets)
        case resuming(Freeze, CutOffsets, sender: EmulatedSender)
        case rollingBack(Freeze, CutOffsets, sender: EmulatedSender)
    }

    /// A migration of a flow whose state must first be learned back from the kernel path.
    init(awaiting id: MigrationID, flowID: FlowID, target: MigrationTarget, requestedAt: Instant,
         allowed: Duration, settleWait: Duration) {
        self.id = id; self.flowID = flowID; self.target = target; self.requestedAt = requestedAt
        self.allowed = allowed; self.settleWait = settleWait
        self.phase = .awaitingState(AwaitingState())
        self.phaseTimes = [(.requested, requestedAt)]
    }

    /// A migration that freezes its flow now (`paused`).
    init(pausing id: MigrationID, flowID: FlowID, target: MigrationTarget, requestedAt: Instant,
         allowed: Duration, settleWait: Duration, freeze: Freeze, now: Instant) {
        self.id = id; self.flowID = flowID; self.target = target; self.requestedAt = requestedAt
        self.allowed = allowed; self.settleWait = settleWait
        self.phase = .paused(freeze)
        self.phaseTimes = [(.requested, requestedAt), (.paused, now)]
    }

    /// A migration a restarted proxy took over from the checkpoint: frozen as it was (`paused`).
    init(restoring id: MigrationID, flowID: FlowID, target: MigrationTarget, freeze: Freeze, allowed: Duration, now: Instant) {
        self.id = id; self.flowID = flowID; self.target = target; self.requestedAt = now
        self.allowed = allowed; self.settleWait = allowed
        self.phase = .paused(freeze)
        self.phaseTimes = [(.requested, now), (.paused, now)]
        self.restoring = RestoringState()
    }

    mutating func enter(_ p: MigrationPhase, at now: Instant) { phaseTimes.append((p, now)) }

    /// The phase the report and `tsmp flows` show: the last one entered.
    var reportedPhase: MigrationPhase { phaseTimes.last?.0 ?? .requested }
    var deadline: Instant { requestedAt + allowed.nanoseconds }
}

/// What a migration taken over after a restart keeps until it goes back to the old device.
struct RestoringState: Sendable {
    var probesSentAt: Instant?
    var probeRounds: UInt8 = 0
}

/// What a migration waiting for its flow's state keeps.
struct AwaitingState: Sendable {
    /// The new device's SYN when it came before the pause: claimed once the migration pauses.
    var pendingSyn: [UInt8]?
    var probesSentAt: Instant?
    /// Rounds of state probes sent (`SpliceEngine+StateProbes`).
    var probeRounds: UInt8 = 0
}

/// What the pause fixed and what the proxy learns while it holds the flow (every phase
/// from `paused` on).
struct Freeze: Sendable {
    /// Until when the cut waits for both directions to settle.
    let settleDeadline: Instant
    let oldDevice: IPEndpoint
    /// Server-space end of what was forwarded to the old device before the pause.
    let forwardedToDeviceEnd: SeqNumber
    /// Old-device-space end of what was forwarded to the server before the pause.
    let forwardedToServerEnd: SeqNumber
    /// The highest ack the server sent for the device side's data, in the server's view.
    var serverAckServerView: SeqNumber
    /// The last TSval the server saw from the device side (RFC 7323), for the proxy's own ACKs.
    var lastTSvalToServer: UInt32?
    /// The server's FIN, when it is the last thing the cache holds.
    var serverFinSeq: SeqNumber?
    /// Bytes the proxy delivers from its copy and cache.
    var bytesCached: UInt64 = 0
    /// The claimed new device (its SYN), from its SYN on.
    var newDevice: NewDeviceHandshake?
    /// Server segments past a hole in the copy, SACKed until the hole fills.
    var held = OutOfOrderHold(capBytes: 0)
}

/// The cut (DESIGN §6 step 3): where the new device's streams continue the old device's.
struct CutOffsets: Sendable {
    /// Server-space sequence number where the new device's stream starts (old device's last ack).
    let toDevice: SeqNumber
    /// Old-device-space sequence number up to which the server received the old device's stream.
    let toServer: SeqNumber
    /// `toServer` in the server's view.
    let toServerView: SeqNumber
}
