import Logging
import Wire

/// A migration the proxy's restart interrupted after its pause (issue "Survive a proxy
/// restart": "rolled back or completed, never left half-done"). The previous process had
/// acknowledged server segments on the device's behalf (DESIGN §6 step 2); the checkpoint
/// has them ("held" records, written before each pre-ack left), and what the pause fixed. The
/// restarted engine takes the flow back to its old device:
///
/// 1. adoption restores the migration `paused`, its flow frozen as before (server segments
///    cached and answered with window 0), its copy holding the checkpointed bytes;
/// 2. the per-packet state both ends hold is learned again: from their next segments, or by
///    asking (the blind state probes, `SpliceEngine+StateProbes`: an unacceptable ACK is
///    answered with <SEQ=SND.NXT><ACK=RCV.NXT>, RFC 9293 §3.10.7.4);
/// 3. then it rolls back (`rollback`): the cut is the old device's own ack, the emulated sender
///    delivers it what it lacks from the copy, and the server gets the device's window again
///    (`rolledBack`, reported under the migration's id).
///
/// The new device's sub-connection ended with the previous process: its segments (and a new
/// SYN from the target to the flow's destination) are answered with a RST for a while. When the
/// new device had already sent bytes on to the server, the old device's stream can't continue
/// there: that flow is reset on both sides instead (`SpliceEngine+InterruptedMigration`).
extension SpliceEngine {
    /// How long a restored migration may take to learn the flow's state and give the cache back.
    static let restoredMigrationAllowed = Duration.seconds(10)

    /// Whether the checkpoint holds what a rollback needs: what the pause fixed, the bytes held
    /// from (at most) what the old device had acknowledged up to what was sent it before the
    /// pause, and no byte of the new device's at the server.
    func canRestore(_ c: FlowCheckpoint) -> Bool {
        guard let z = c.freeze, c.migrationID != nil, !z.newDeviceSentData else { return false }
        let held = Self.heldBytes(c, z)
        return held.start.lessThanOrEqual(z.forwardedToDeviceEnd) && held.end.greaterThanOrEqual(z.forwardedToDeviceEnd)
    }

    /// The bytes the checkpoint holds for `c`'s migration: none (a copy that was empty) starts
    /// where the pause forwarded up to.
    static func heldBytes(_ c: FlowCheckpoint, _ z: CheckpointedFreeze) -> HeldBytes {
        c.held ?? HeldBytes(start: z.forwardedToDeviceEnd, bytes: [])
    }

    /// Step 1 for an adopted flow (`canRestore`): the migration `paused` again, restoring.
    func restoreMigration(_ c: FlowCheckpoint, slot: Int, now: Instant) {
        guard let z = c.freeze, let mid = c.migrationID, let local = shard.localID(global: mid.rawValue),
              let flow = table[slot: slot] else { return }
        nextMigrationID = max(nextMigrationID, local + 1)
        let allowed = Self.restoredMigrationAllowed
        var freeze = Freeze(settleDeadline: now + allowed.nanoseconds, oldDevice: flow.device,
                            forwardedToDeviceEnd: z.forwardedToDeviceEnd, forwardedToServerEnd: z.forwardedToServerEnd,
                            serverAckServerView: z.serverAckServerView, lastTSvalToServer: z.lastTSvalToServer)
        freeze.serverFinSeq = z.serverFinSeq
        freeze.held = OutOfOrderHold(capBytes: config.limits.inFlightPerFlow)
        let held = Self.heldBytes(c, z)
        var copy = InFlightCopy(start: held.start, cap: max(config.limits.inFlightPerFlow, held.bytes.count))
        let grew = held.bytes.withUnsafeBytes { copy.record(seq: held.start, payload: $0, budget: held.bytes.count, restartOnGap: false) }
        inFlightStorageBytes += grew
        withFlow(slot) { f in
            f.migration = mid
            f.kernelPath = .none
            f.inFlight = copy
        }
        // The checkpoint it came from has these bytes; the snapshot written after adoption too.
        defer { migrations[mid]?.checkpointedCopyEnd = copy.end }
        var target = MigrationTarget(address: IPv4Address(0))
        if let t = c.migrationTarget, case .v4(let address) = t.address {
            target = MigrationTarget(address: address, port: t.port == 0 ? nil : t.port)
        }
        migrations[mid] = Migration(restoring: mid, flowID: c.id, target: target, freeze: freeze, allowed: allowed, now: now)
        journalPhases(of: mid)
        refuseNewDevice(of: c, original: flow.original, now: now)
        logger.notice("migration interrupted by the proxy's restart: taking the flow back to its old device", metadata: [
            "migration.id": "\(mid)", "flow.id": "\(c.id)", "migration.from": "\(flow.device)",
            "migration.bytes_held": "\(held.bytes.count)",
        ])
    }

    /// Refuses, here too, the new devices another shard's adoption refused: their segments are
    /// routed by their own 4-tuple, which may hash to this shard. Call before the first packet.
    public func refuseNewDevices(_ refusals: [RefusedAfterRestart]) {
        restartRefusals += refusals.filter { !restartRefusals.contains($0) }
    }

    /// Whoever was to continue the flow of `c`'s migration: nothing continues it after the
    /// restart, so its sub-connection (or, not yet begun, its SYN) is refused for a while.
    func refuseNewDevice(of c: FlowCheckpoint, original: IPEndpoint, now: Instant) {
        let until = now + Self.restoredMigrationAllowed.nanoseconds
        let refusal: RefusedAfterRestart
        if let d = c.freeze?.newDevice {
            refusal = RefusedAfterRestart(address: d.address, port: d.port, original: original, until: until)
        } else if let t = c.migrationTarget, t.address != .v4(IPv4Address(0)) {
            refusal = RefusedAfterRestart(address: t.address, port: t.port == 0 ? nil : t.port, original: original, until: until)
        } else {
            return
        }
        restartRefusals.append(refusal)
        adoptionRefusals.append(refusal)
    }

    /// Steps 2 and 3, from `runMigrationTimers`.
    func runRestoring(_ mid: MigrationID, slot: Int, now: Instant, generated: PacketBatch) {
        guard let m = migrations[mid], let restoring = m.restoring, let flow = table[slot: slot] else { return }
        if flow.toServer.knowsSequenceState && flow.toDevice.knowsSequenceState {
            migrations[mid]?.restoring = nil
            migrations[mid]?.updateFreeze { z in
                // The server has seen the device's clock at least this far (its answer is fresh).
                guard let ts = flow.toServer.lastTSval else { return }
                let shifted = ts &+ flow.toServer.tsOffset
                if z.lastTSvalToServer.map({ Int32(bitPattern: shifted &- $0) > 0 }) ?? true { z.lastTSvalToServer = shifted }
            }
            rollback(slot: slot, mid: mid,
                     reason: "interrupted by the proxy's restart: the new device's connection ended with the process",
                     now: now, generated: generated)
            return
        }
        if now >= m.deadline {
            abandon(slot: slot, mid: mid,
                    reason: "interrupted by the proxy's restart, and the flow's state could not be learned again before the deadline",
                    now: now, generated: generated)
            return
        }
        let quiet = now.nanoseconds &- max(flow.lastActivity.nanoseconds, m.requestedAt.nanoseconds)
        let probedLongAgo = restoring.probesSentAt.map { now.nanoseconds &- $0.nanoseconds >= Self.stateProbeInterval } ?? true
        if quiet >= Self.stateProbeQuiet && probedLongAgo {
            // Blind rounds only: the last segments' values died with the previous process.
            sendStateProbes(flow, round: 1, generated: generated)
            var probed = restoring
            probed.probesSentAt = now
            probed.probeRounds &+= 1
            migrations[mid]?.restoring = probed
        }
    }

    /// A segment from a restored migration's new device (or, its port unknown, a SYN from its
    /// address to the flow's destination): answered with a RST and dropped.
    func refuseAfterRestart(_ packet: TCPIPPacket, now: Instant, generated: PacketBatch) -> Verdict? {
        restartRefusals.removeAll { now >= $0.until }
        let src = packet.source, dst = packet.destination
        guard restartRefusals.contains(where: {
            $0.address == src.address && $0.original == dst && ($0.port.map { $0 == src.port } ?? packet.tcp.flags.contains(.syn))
        }) else { return nil }
        if !packet.tcp.flags.contains(.rst) { sendReset(answering: packet, generated: generated) }
        return .drop(.interruptedMigration)
    }
}

/// A new device whose sub-connection a restart ended (`SpliceEngine.refuseAfterRestart`).
public struct RefusedAfterRestart: Sendable, Equatable {
    public let address: IPAddress
    /// Nil: the port was never named; SYNs from the address are refused.
    public let port: UInt16?
    public let original: IPEndpoint
    public let until: Instant
}
