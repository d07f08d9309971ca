import Logging
import Wire

/// Live migration of a flow from its device to another (TSMP draft §4.3; DESIGN §6), driven
/// by packets (`SpliceEngine+MigrationPackets`) and by `runMigrationTimers(now:generated:)`.
/// Each migration is a `Migration` value in `migrations`, its phase an enum:
///
/// 1. `startMigration` checks the preconditions and pauses: every segment the proxy sends to
///    the server from then on advertises window 0 and acknowledges everything the proxy holds
///    (pre-acks on the new device's behalf); server data is cached, not forwarded; the old
///    device is told window 0 too. A flow just back from the kernel path first waits to be
///    known again (`awaitingState`, `SpliceEngine+MigrationAwaiting`).
/// 2. When both directions have settled (the old device acknowledged what it was sent, the
///    server what the old device sent; bounded wait), the cut offsets are fixed.
/// 3. The new device's SYN (from the target address to the flow's destination) is answered by
///    the proxy emulating the server; then `EmulatedSender` delivers the cached bytes.
/// 4. When all are acknowledged the new device's real window goes to the server, the old
///    device gets a RST at exactly its RCV.NXT (RFC 5961 §3.2), and the flow is a normal splice
///    with new sequence and timestamp offsets.
/// 5. If the new device does not arrive or resets before the deadline, the cache is delivered
///    to the old device the same way and the flow goes on there (rollback).
extension SpliceEngine {
    /// Starts migrating `flow` toward `target`. Nothing changes when it is refused.
    public func startMigration(flow id: FlowID, to target: MigrationTarget, deadline: Duration,
                               settleWait: Duration = .seconds(1), now: Instant,
                               generated: PacketBatch) -> Result<MigrationID, MigrationRefusal> {
        guard let slot = table.slot(id: id), let flow = table[slot: slot] else { return .failure(.unknownFlow(id)) }
        if let m = flow.migration { return .failure(.alreadyMigrating(id, m)) }
        if let waiting = migrations.values.filter({ $0.flowID == id && $0.isAwaitingState }).map(\.id).min() {
            return .failure(.alreadyMigrating(id, waiting))
        }
        guard flow.state == .established else { return .failure(.notEstablished(id, flow.state)) }
        if flow.device.address == target.address && (target.port == nil || target.port == flow.device.port) {
            return .failure(.sameDevice(id))
        }
        if original(flow, for: target.address.family) == nil {
            // A device of the other family continues the flow through the service's address of
            // its family (its packets translated); in transparent mode it would have to reach
            // the server's own address, of the flow's family.
            let family = target.address.family == .ipv6 ? "IPv6" : "IPv4"
            return .failure(.unsupported(id, "the target \(target.address) is \(family), and no \(family) service address leads to the flow's server \(flow.server) (only a service's flows move across families)"))
        }
        if flow.kernelPath == .inKernel || flow.kernelPath == .leaving || kernelPathPending.contains(id) {
            return .failure(.unsupported(id, "the kernel still forwards it (take it back from the kernel path first)"))
        }
        let mid = MigrationID(shard.globalID(local: nextMigrationID))
        if flow.kernelPath == .resyncing && !(flow.toServer.knowsSequenceState && flow.toDevice.knowsSequenceState) {
            // Just back from the kernel: pause once segments (or probes) taught the state again.
            nextMigrationID += 1
            migrations[mid] = Migration(awaiting: mid, flowID: id, target: target, requestedAt: now, allowed: deadline,
                                        settleWait: settleWait)
            noteCheckpointChange(id)   // a restart reports it
            journalPhases(of: mid)
            logger.info("migration waits for the flow's state", metadata: [
                "migration.id": "\(mid)", "flow.id": "\(id)", "migration.phase": "requested",
            ])
            announceAwaitedNewDevice(mid)
            return .success(mid)
        }
        let migration = Migration(awaiting: mid, flowID: id, target: target, requestedAt: now, allowed: deadline,
                                  settleWait: settleWait)
        return beginPause(migration, slot: slot, now: now, generated: generated).map { mid in
            nextMigrationID += 1
            announceAwaitedNewDevice(mid)
            return mid
        }
    }

    /// Pauses the flow of `migration` (step 1), when what the engine knows of it allows;
    /// `migration` enters the table `paused`. Nothing changes when it is refused.
    func beginPause(_ migration: Migration, slot: Int, now: Instant, generated: PacketBatch) -> Result<MigrationID, MigrationRefusal> {
        let mid = migration.id
        guard let flow = table[slot: slot] else { return .failure(.unknownFlow(migration.flowID)) }
        let id = flow.id
        guard let toDeviceEnd = flow.toDevice.nextSeq, let toServerEnd = flow.toServer.nextSeq else {
            return .failure(.unsupported(id, "its handshake was not seen"))
        }
        let deviceAck = flow.toServer.highestAck ?? toDeviceEnd
        if deviceAck.lessThan(toDeviceEnd) {
            let copy = flow.inFlight
            let start = copy?.start ?? toDeviceEnd
            let end = copy?.end ?? deviceAck
            if start.greaterThan(deviceAck) || end != toDeviceEnd {
                // Unacknowledged bytes [deviceAck, toDeviceEnd) outside the copy's [start, end).
                let from = SeqNumber.max(start, deviceAck), to = SeqNumber.min(end, toDeviceEnd)
                let held = from.lessThan(to) ? UInt64(from.distance(to: to)) : 0
                return .failure(.copyIncomplete(id, missing: UInt64(deviceAck.distance(to: toDeviceEnd)) - held))
            }
        }
        var freeze = Freeze(
            settleDeadline: now + min(migration.settleWait.nanoseconds, migration.allowed.nanoseconds / 2),
            oldDevice: flow.device, forwardedToDeviceEnd: toDeviceEnd, forwardedToServerEnd: toServerEnd,
            serverAckServerView: flow.toServer.seqOffset.apply(flow.toDevice.highestAck ?? toServerEnd),
            lastTSvalToServer: flow.toServer.lastTSval.map { $0 &+ flow.toServer.tsOffset })
        let perFlowCap = config.limits.inFlightPerFlow
        freeze.held = OutOfOrderHold(capBytes: perFlowCap)
        withFlow(slot) { f in
            f.migration = mid
            f.kernelPath = .none
            if f.inFlight == nil { f.inFlight = InFlightCopy(start: toDeviceEnd, cap: perFlowCap) }
        }
        migrations[mid] = Migration(pausing: mid, flowID: id, target: migration.target, requestedAt: migration.requestedAt,
                                    allowed: migration.allowed, settleWait: migration.settleWait, freeze: freeze, now: now)
        noteCheckpointChange(id)   // from here on the proxy holds bytes only this process has
        journalPhases(of: mid)
        logger.info("migration paused", metadata: [
            "migration.id": "\(mid)", "flow.id": "\(id)", "migration.from": "\(flow.device)",
            "migration.to": "\(migration.target)", "migration.phase": "paused",
        ])
        sendFreezeAckToServer(slot: slot, mid: mid, generated: generated)
        sendAckToOldDevice(slot: slot, mid: mid, generated: generated)
        return .success(mid)
    }

    /// Names the port the new device will connect from (the target agent's answer to the MTR).
    /// Only before its SYN was claimed and while the migration runs toward the new device.
    public func bindMigrationSourcePort(_ port: UInt16, to id: MigrationID) -> Result<Void, MigrationRefusal> {
        guard var m = migrations[id] else { return .failure(.unknownMigration(id)) }
        switch m.phase {
        case .awaitingState(let waiting):
            guard waiting.pendingSyn == nil else { return .failure(.tooLate(id, .requested)) }
        case .paused(let freeze), .cut(let freeze, _):
            guard freeze.newDevice == nil else { return .failure(.tooLate(id, m.reportedPhase)) }
        case .resuming, .rollingBack:
            return .failure(.tooLate(id, m.reportedPhase))
        }
        m.target.port = port
        m.target.awaitsPort = false
        migrations[id] = m
        announceAwaitedNewDevice(id)
        if !m.isAwaitingState {
            logger.info("migration source port bound", metadata: ["migration.id": "\(id)", "migration.to": "\(m.target)"])
        }
        return .success(())
    }

    /// The report of a migration, running or finished.
    public func migrationReport(_ id: MigrationID, now: Instant) -> MigrationReport? {
        if let m = migrations[id] { return report(m, now: now) }
        return finishedMigrations[id]
    }

    /// Migrations running, and migrated flows whose window update the server has not yet shown
    /// it took (`WindowReopen`): both need `runMigrationTimers`. A migration is done when bytes flow.
    public var activeMigrationCount: Int {
        migrations.count + windowReopens.filter { id, w in
            table.slot(id: id).flatMap { table[slot: $0] }.map { !windowSeenOpen($0, w) } ?? false
        }.count
    }

    /// Timers of running migrations: the wait for a flow's state, the cut, the deadline,
    /// retransmissions.
    public func runMigrationTimers(now: Instant, generated: PacketBatch) {
        defer { if !windowReopens.isEmpty { runWindowReopens(now: now, generated: generated) } }
        guard !migrations.isEmpty else { return }
        // Those waiting for their flow's state first: one that pauses now runs its timers below.
        for mid in migrations.keys.sorted() where migrations[mid]?.isAwaitingState == true {
            runAwaitingState(mid, now: now, generated: generated)
        }
        for mid in migrations.keys.sorted() {
            guard let m = migrations[mid], !m.isAwaitingState else { continue }
            guard let slot = table.slot(id: m.flowID), let flow = table[slot: slot] else {
                migrations[mid] = nil
                journal.forget(mid)
                timelines[mid] = nil
                continue
            }
            if m.restoring != nil {
                runRestoring(mid, slot: slot, now: now, generated: generated)
                if migrations[mid]?.restoring != nil { continue }
            }
            if case .paused(let freeze) = m.phase, isSettled(flow, freeze) || now >= freeze.settleDeadline {
                if let unknown = bytesUnacknowledgedByServer(flow, freeze), !isSettled(flow, freeze) {
                    // Never splice over unknown bytes: they may still reach the server, or be
                    // held there out of order, where the new device's bytes would be taken
                    // as duplicates (issue "Real-network TCP" item 1). The old device goes on.
                    rollback(slot: slot, mid: mid,
                             reason: "the server had not acknowledged \(unknown) bytes the old device sent before the settle deadline",
                             now: now, generated: generated)
                } else {
                    cut(slot: slot, mid: mid, now: now, generated: generated)
                }
            }
            guard let m2 = migrations[mid] else { continue }
            if now >= m2.deadline && !m2.isRollingBack {
                let why = m2.newDevice == nil ? "the new device did not connect before the deadline"
                                              : "the new device did not take the cached bytes before the deadline"
                rollback(slot: slot, mid: mid, reason: why, now: now, generated: generated)
            } else if m2.isRollingBack && now.nanoseconds > m2.deadline.nanoseconds &+ m2.allowed.nanoseconds {
                abandon(slot: slot, mid: mid, reason: (m2.reason ?? "rolled back") + "; the old device did not take the cache back",
                        now: now, generated: generated)
                continue
            }
            if let m3 = migrations[mid], case .cut(let freeze, _) = m3.phase, let h = freeze.newDevice,
               let at = h.synAckSentAt, now.nanoseconds >= at.nanoseconds &+ Self.synAckTimeout(after: h.synAckRetransmissions) {
                // The handshake's ACK did not come (lost on the way): answer again, as a server
                // retransmits its SYN-ACK (RFC 9293 §3.8.1, RFC 6298 §2.1 and §5.5).
                migrations[mid]?.updateNewDevice { $0.synAckRetransmissions += 1 }
                sendSynAck(slot: slot, mid: mid, now: now, generated: generated)
            }
            if var m4 = migrations[mid], var sender = m4.sender {
                let segments = sender.timerFired(now: now)
                m4.setSender(sender)
                migrations[mid] = m4
                transmit(segments, slot: slot, mid: mid, now: now, generated: generated)
            }
        }
    }

    /// The SYN migration `id` waits for: from `target` (its port, once known) to `original`
    /// (the flow's destination as its device sees it). Nil once claimed, or when the migration
    /// is no longer running toward a new device.
    public func awaitedNewDevice(_ id: MigrationID) -> (target: MigrationTarget, original: IPEndpoint)? {
        guard let m = migrations[id], let slot = table.slot(id: m.flowID), let flow = table[slot: slot] else { return nil }
        switch m.phase {
        case .awaitingState(let waiting):
            return waiting.pendingSyn == nil ? (m.target, original(flow, for: m.target.address.family) ?? flow.original) : nil
        case .paused, .cut: return m.awaitsNewDeviceSyn ? (m.target, original(flow, for: m.target.address.family) ?? flow.original) : nil
        case .resuming, .rollingBack: return nil
        }
    }
}
