import Logging
import Wire

/// Migrations of flows just back from the kernel path (`Migration.Phase.awaitingState`): the
/// pause needs what each side sent and acknowledged, and the copy of what the device has not
/// acknowledged (DESIGN §6), which the engine learns again from segments; an idle flow is
/// asked with probes (`SpliceEngine+StateProbes`).
extension SpliceEngine {
    /// After this long without a segment of a flow whose state a migration waits for, probe,
    /// and again after each interval.
    static let stateProbeQuiet: UInt64 = 20_000_000
    static let stateProbeInterval: UInt64 = 250_000_000

    /// Pauses migration `mid` once its flow's state is known again; probes the flow's ends
    /// meanwhile; ends it at its deadline (nothing was changed: the flow goes on where it was).
    func runAwaitingState(_ mid: MigrationID, now: Instant, generated: PacketBatch) {
        guard let m = migrations[mid], case .awaitingState(let waiting) = m.phase else { return }
        guard let slot = table.slot(id: m.flowID), let flow = table[slot: slot] else {
            finishAwaiting(m, phase: .aborted, reason: "the flow ended before the migration could start", now: now)
            return
        }
        if flow.toServer.knowsSequenceState && flow.toDevice.knowsSequenceState {
            switch beginPause(m, slot: slot, now: now, generated: generated) {
            case .success:
                if var syn = waiting.pendingSyn {
                    syn.withUnsafeMutableBytes { raw in
                        if let packet = try? TCPIPPacket(validating: raw) { _ = claimMigrationSyn(packet, candidates: [mid], now: now, generated: generated) }
                    }
                }
                return
            case .failure(.copyIncomplete):
                break // the device has not yet acknowledged what it got before the copy began
            case .failure(let refusal):
                finishAwaiting(m, phase: .rolledBack, reason: refusal.description, now: now)
                return
            }
        }
        if now >= m.deadline {
            finishAwaiting(m, phase: .rolledBack,
                           reason: "the flow's sequence state could not be learned back from the kernel path before the deadline",
                           now: now)
            return
        }
        let quiet = now.nanoseconds &- max(flow.lastActivity.nanoseconds, m.requestedAt.nanoseconds)
        let probedLongAgo = waiting.probesSentAt.map { now.nanoseconds &- $0.nanoseconds >= Self.stateProbeInterval } ?? true
        if quiet >= Self.stateProbeQuiet && probedLongAgo {
            sendStateProbes(flow, round: waiting.probeRounds, generated: generated)
            var probed = waiting
            probed.probesSentAt = now
            probed.probeRounds &+= 1
            migrations[mid]?.phase = .awaitingState(probed)
        }
    }

    /// A migration that never paused ends (`phase`: rolled back or aborted, with `reason`).
    private func finishAwaiting(_ m: Migration, phase: MigrationPhase, reason: String, now: Instant) {
        var ended = m
        ended.enter(phase, at: now)
        ended.reason = reason
        finish(ended, now: now)
        logger.info("migration not started", metadata: [
            "migration.id": "\(m.id)", "flow.id": "\(m.flowID)", "migration.phase": "\(phase.rawValue)", "migration.reason": "\(reason)",
        ])
    }
}
