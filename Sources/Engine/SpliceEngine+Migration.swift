import Logging
import Wire

/// Live migration of a flow from its device to another (TSMP draft §4.3; DESIGN §6), driven
/// by packets and by `runMigrationTimers(now:generated:)`:
///
/// 1. `startMigration` checks the preconditions and pauses: every segment the proxy sends to
///    the server from then on advertises window 0 and acknowledges everything the proxy holds
///    (pre-acks on the new device's behalf); server data is cached, not forwarded; the old
///    device is told window 0 too.
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
        if let waiting = awaitingState.first(where: { $0.value.flowID == id }) { return .failure(.alreadyMigrating(id, waiting.key)) }
        guard flow.state == .established else { return .failure(.notEstablished(id, flow.state)) }
        if flow.device.address == target.address && (target.port == nil || target.port == flow.device.port) {
            return .failure(.sameDevice(id))
        }
        if flow.kernelPath == .inKernel || flow.kernelPath == .leaving {
            return .failure(.unsupported(id, "the kernel still forwards it (take it back from the kernel path first)"))
        }
        let mid = MigrationID(shard.globalID(local: nextMigrationID))
        if flow.kernelPath == .resyncing && !(flow.toServer.knowsSequenceState && flow.toDevice.knowsSequenceState) {
            // Just back from the kernel: pause once segments (or probes) taught the state again.
            nextMigrationID += 1
            awaitingState[mid] = AwaitingStateMigration(flowID: id, target: target, requestedAt: now, deadline: deadline,
                                                        settleWait: settleWait)
            logger.info("migration waits for the flow's state", metadata: [
                "migration.id": "\(mid)", "flow.id": "\(id)", "migration.phase": "requested",
            ])
            return .success(mid)
        }
        return beginPause(mid: mid, slot: slot, target: target, requestedAt: now, deadline: deadline,
                          settleWait: settleWait, now: now, generated: generated).map { mid in
            nextMigrationID += 1
            return mid
        }
    }

    /// Pauses flow `slot` for migration `mid` (step 1), when what the engine knows of it allows.
    func beginPause(mid: MigrationID, slot: Int, target: MigrationTarget, requestedAt: Instant, deadline: Duration,
                    settleWait: Duration, now: Instant, generated: PacketBatch) -> Result<MigrationID, MigrationRefusal> {
        let flow = table[slot: slot]!
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
        var state = MigrationState(
            id: mid, flowID: id, target: target, requestedAt: requestedAt,
            deadline: requestedAt + deadline.nanoseconds,
            settleDeadline: now + min(settleWait.nanoseconds, deadline.nanoseconds / 2),
            oldDevice: flow.device, forwardedToDeviceEnd: toDeviceEnd, forwardedToServerEnd: toServerEnd)
        state.enter(.requested, at: requestedAt)
        state.enter(.paused, at: now)
        state.serverAckServerView = flow.toServer.seqOffset.apply(flow.toDevice.highestAck ?? toServerEnd)
        state.lastTSvalToServer = flow.toServer.lastTSval.map { $0 &+ flow.toServer.tsOffset }
        withFlow(slot) { f in
            f.migration = mid
            f.kernelPath = .none
            if f.inFlight == nil { f.inFlight = InFlightCopy(start: toDeviceEnd, cap: config.limits.inFlightPerFlow) }
        }
        migrations[mid] = state
        logger.info("migration paused", metadata: [
            "migration.id": "\(mid)", "flow.id": "\(id)", "migration.from": "\(flow.device)",
            "migration.to": "\(target)", "migration.phase": "paused",
        ])
        sendFreezeAckToServer(slot: slot, mid: mid, generated: generated)
        sendAckToOldDevice(slot: slot, mid: mid, generated: generated)
        return .success(mid)
    }

    /// Names the port the new device will connect from (the target agent's answer to the MTR).
    /// Only before its SYN was claimed and while the migration runs toward the new device.
    public func bindMigrationSourcePort(_ port: UInt16, to id: MigrationID) -> Result<Void, MigrationRefusal> {
        if awaitingState[id] != nil {
            guard awaitingState[id]!.pendingSyn == nil else { return .failure(.tooLate(id, .requested)) }
            awaitingState[id]!.target.port = port
            awaitingState[id]!.target.awaitsPort = false
            return .success(())
        }
        guard let m = migrations[id] else { return .failure(.unknownMigration(id)) }
        guard m.newDevice == nil, !m.senderTowardOldDevice else { return .failure(.tooLate(id, m.phase)) }
        migrations[id]!.target.port = port
        migrations[id]!.target.awaitsPort = false
        logger.info("migration source port bound", metadata: ["migration.id": "\(id)", "migration.to": "\(migrations[id]!.target)"])
        return .success(())
    }

    /// The report of a migration, running or finished.
    public func migrationReport(_ id: MigrationID, now: Instant) -> MigrationReport? {
        if let m = migrations[id] { return report(m, now: now) }
        if let waiting = awaitingReport(id, now: now) { return waiting }
        return finishedMigrations[id]
    }

    public var activeMigrationCount: Int { migrations.count + awaitingState.count }

    /// Timers of running migrations: the cut, the deadline, retransmissions.
    public func runMigrationTimers(now: Instant, generated: PacketBatch) {
        if !awaitingState.isEmpty { runAwaitingStateMigrations(now: now, generated: generated) }
        for mid in migrations.keys.sorted() {
            guard let m = migrations[mid], let slot = table.slot(id: m.flowID) else {
                migrations[mid] = nil
                continue
            }
            if m.phase == .paused && (isSettled(slot: slot, m) || now >= m.settleDeadline) {
                cut(slot: slot, mid: mid, now: now, generated: generated)
            }
            guard let m2 = migrations[mid] else { continue }
            if now >= m2.deadline && !m2.senderTowardOldDevice && m2.phase != .spliced {
                let why = m2.newDevice == nil ? "the new device did not connect before the deadline"
                                              : "the new device did not take the cached bytes before the deadline"
                rollback(slot: slot, mid: mid, reason: why, now: now, generated: generated)
            } else if m2.senderTowardOldDevice && now.nanoseconds > m2.deadline.nanoseconds &+ (m2.deadline.nanoseconds &- m2.requestedAt.nanoseconds) {
                abandon(slot: slot, mid: mid,
                        reason: (m2.rollbackReason ?? "rolled back") + "; the old device did not take the cache back",
                        now: now, generated: generated)
                continue
            }
            if let m3 = migrations[mid], m3.synAckSent, !m3.newDeviceEstablished, !m3.senderTowardOldDevice,
               let at = m3.synAckSentAt, now.nanoseconds >= at.nanoseconds &+ Self.synAckTimeout(after: m3.synAckRetransmissions) {
                // The handshake's ACK did not come (lost on the way): answer again, as a server
                // retransmits its SYN-ACK (RFC 9293 §3.8.1, RFC 6298 §2.1 and §5.5).
                migrations[mid]!.synAckRetransmissions += 1
                sendSynAck(slot: slot, mid: mid, now: now, generated: generated)
            }
            if var sender = migrations[mid]?.sender {
                let segments = sender.timerFired(now: now)
                migrations[mid]!.sender = sender
                transmit(segments, slot: slot, mid: mid, now: now, generated: generated)
            }
        }
    }

    // MARK: Packets of a migrating flow

    /// A SYN for no known flow: is it the new device of a pending migration?
    func claimMigrationSyn(_ packet: TCPIPv4Packet, now: Instant, generated: PacketBatch) -> Verdict? {
        if !awaitingState.isEmpty, let held = holdSynOfAwaitingMigration(packet) { return held }
        guard !migrations.isEmpty else { return nil }
        let src = packet.source, dst = packet.destination
        for mid in migrations.keys.sorted() {
            let m = migrations[mid]!
            guard m.newDevice == nil, !m.senderTowardOldDevice, m.target.address == src.address,
                  !m.target.awaitsPort, m.target.port == nil || m.target.port == src.port,
                  let slot = table.slot(id: m.flowID), table[slot: slot]!.original == dst else { continue }
            let syn = SynOptions(packet.tcp.options)
            migrations[mid]!.newDevice = src
            migrations[mid]!.newDeviceISN = packet.tcp.seq
            migrations[mid]!.newDeviceSyn = syn
            migrations[mid]!.newDeviceWindowField = packet.tcp.window
            migrations[mid]!.newDeviceTSRecent = packet.tcp.options.timestamp?.value
            table.setAlias(DeviceSideKey(device: src, original: dst), slot: slot)
            logger.info("new device connecting", metadata: [
                "migration.id": "\(mid)", "flow.id": "\(m.flowID)", "migration.new_device": "\(src)",
            ])
            if m.phase == .oldDeviceCut { sendSynAck(slot: slot, mid: mid, now: now, generated: generated) }
            return .consumed
        }
        return nil
    }

    /// A packet from the old or the new device of a migrating flow.
    func migratingFromDevice(_ packet: TCPIPv4Packet, slot: Int, now: Instant, generated: PacketBatch) -> Verdict {
        let flow = table[slot: slot]!
        let mid = flow.migration!
        let m = migrations[mid]!
        if let newDevice = m.newDevice, packet.source == newDevice {
            return fromNewDevice(packet, slot: slot, mid: mid, now: now, generated: generated)
        }
        // The old device.
        let tcp = packet.tcp
        let ackInServerSpace = flow.toDevice.seqOffset.reverse(tcp.ack)
        if m.phase != .paused && !m.senderTowardOldDevice { return .consumed } // cut: nothing more from it
        withFlow(slot) { f in
            f.lastActivity = now
            observe(sender: &f.toServer, other: &f.toDevice, tcp: tcp, timestamp: tcp.options.timestamp?.value,
                    ackInOtherSpace: ackInServerSpace)
        }
        if m.senderTowardOldDevice, tcp.flags.contains(.ack), var sender = m.sender {
            let window = WindowScale.bytes(tcp.window, shift: flow.currentDeviceShift)
            let again = sender.acknowledge(ackInServerSpace, window: window, now: now,
                                           carriesData: tcp.payloadLength > 0 || tcp.flags.contains(.fin))
            migrations[mid]!.sender = sender
            transmit(again, slot: slot, mid: mid, now: now, generated: generated)
            transmitNew(slot: slot, mid: mid, now: now, generated: generated)
            if migrations[mid]?.sender?.isComplete == true {
                finishRollback(slot: slot, mid: mid, now: now, generated: generated)
            }
        }
        if tcp.payloadLength == 0 && !tcp.flags.contains(.fin) {
            if m.phase == .paused && isSettled(slot: slot, m) { cut(slot: slot, mid: mid, now: now, generated: generated) }
            return .consumed
        }
        // Data the old device sent before it was frozen goes to the server (DESIGN §6 step 2).
        rewriteTowardServer(packet, flow: table[slot: slot]!, seqOffset: flow.toServer.seqOffset,
                            tsOffset: flow.toServer.tsOffset, preAck: preAckPoint(slot: slot))
        migrations[mid]!.lastTSvalToServer = tcp.options.timestamp?.value
        return .forward
    }

    private func fromNewDevice(_ packet: TCPIPv4Packet, slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) -> Verdict {
        let tcp = packet.tcp
        let flags = tcp.flags
        var m = migrations[mid]!
        if flags.contains(.rst) {
            if !m.senderTowardOldDevice {
                rollback(slot: slot, mid: mid, reason: "the new device reset its connection", now: now, generated: generated)
            }
            return .consumed
        }
        if let ts = tcp.options.timestamp { m.newDeviceTSRecent = ts.value }
        m.newDeviceWindowField = tcp.window
        migrations[mid] = m
        if flags.contains(.syn) {
            if m.synAckSent { sendSynAck(slot: slot, mid: mid, now: now, generated: generated) } // its retransmission
            return .consumed
        }
        guard let isn = m.newDeviceISN else { return .consumed }
        if !m.newDeviceEstablished {
            guard m.synAckSent, flags.contains(.ack), tcp.ack == synAckSeq(slot: slot, m) + 1 else { return .consumed }
            migrations[mid]!.newDeviceEstablished = true
            migrations[mid]!.newDeviceNext = isn + 1
            migrations[mid]!.enter(.newDeviceConnected, at: now)
            startSenderTowardNewDevice(slot: slot, mid: mid, now: now)
            logger.info("new device connected", metadata: ["migration.id": "\(mid)", "migration.phase": "new-device-connected"])
        }
        m = migrations[mid]!
        guard !m.senderTowardOldDevice else { return .consumed }
        let flow = table[slot: slot]!
        // Its acks drive the emulated sender; they are not forwarded (DESIGN §6 step 4).
        if flags.contains(.ack), var sender = m.sender {
            let window = WindowScale.bytes(tcp.window, shift: newDeviceOwnShift(m))
            let again = sender.acknowledge(flow.toDevice.seqOffset.reverse(tcp.ack), window: window, now: now,
                                           carriesData: tcp.payloadLength > 0 || flags.contains(.fin))
            migrations[mid]!.sender = sender
            transmit(again, slot: slot, mid: mid, now: now, generated: generated)
            transmitNew(slot: slot, mid: mid, now: now, generated: generated)
        }
        var verdict = Verdict.consumed
        if tcp.payloadLength > 0 || flags.contains(.fin) {
            // Its data continues the old device's stream at the cut (DESIGN §6, both directions).
            let end = tcp.seq + tcp.sequenceLength
            if let n = migrations[mid]!.newDeviceNext { migrations[mid]!.newDeviceNext = SeqNumber.max(n, end) }
            if flags.contains(.fin) { migrations[mid]!.newDeviceFinSeq = tcp.seq + UInt32(tcp.payloadLength) }
            rewriteTowardServer(packet, flow: flow, seqOffset: m.newToServerOffset, tsOffset: m.newTSOffset,
                                preAck: preAckPoint(slot: slot))
            neutraliseOptions(tcp, kind: TCPOptionKind.sack)
            if let ts = tcp.options.timestamp { migrations[mid]!.lastTSvalToServer = ts.value }
            verdict = .forward
        }
        if migrations[mid]?.sender?.isComplete == true {
            migrations[mid]!.enter(.cacheDrained, at: now)
            splice(slot: slot, mid: mid, now: now, generated: generated)
        }
        return verdict
    }

    /// A packet from the server of a migrating flow: cached and pre-acknowledged, not forwarded.
    func migratingFromServer(_ packet: TCPIPv4Packet, slot: Int, now: Instant, generated: PacketBatch) -> Verdict {
        let tcp = packet.tcp
        let mid = table[slot: slot]!.migration!
        let budget = max(0, config.limits.inFlightTotal - inFlightStorageBytes)
        var grew = 0
        var expectedBefore = SeqNumber(0)
        let before = table[slot: slot]!.toDevice
        withFlow(slot) { f in
            f.lastActivity = now
            let ackInDeviceSpace = f.toServer.seqOffset.reverse(tcp.ack)
            observe(sender: &f.toDevice, other: &f.toServer, tcp: tcp, timestamp: tcp.options.timestamp?.value,
                    ackInOtherSpace: ackInDeviceSpace)
            expectedBefore = f.inFlight!.end
            if tcp.payloadLength > 0 {
                grew = f.inFlight!.record(seq: tcp.seq, payload: UnsafeRawBufferPointer(tcp.payload), budget: budget,
                                          restartOnGap: false)
            }
        }
        inFlightStorageBytes += grew
        let copyEnd = table[slot: slot]!.inFlight!.end
        if tcp.flags.contains(.fin) && tcp.seq + UInt32(tcp.payloadLength) == copyEnd {
            migrations[mid]!.serverFinSeq = copyEnd
        }
        var m = migrations[mid]!
        if tcp.flags.contains(.ack) {
            if tcp.ack.greaterThan(m.serverAckServerView) { m.serverAckServerView = tcp.ack }
        }
        // Bytes cached after the emulated sender started (still in flight at the pause): it
        // delivers them too, or the server, which has their pre-ack, would never resend them.
        if var sender = m.sender, copyEnd.greaterThan(sender.end) || (m.serverFinSeq == copyEnd && !sender.fin) {
            let oldEnd = sender.end
            sender.extend(to: copyEnd, fin: m.serverFinSeq == copyEnd)
            m.bytesCached &+= UInt64(oldEnd.distance(to: sender.end))
            m.sender = sender
        }
        migrations[mid] = m
        // Answer data, FIN and zero-window probes with next-expected and window 0 (TSMP §4.3.1).
        if tcp.payloadLength > 0 || tcp.flags.contains(.fin) || tcp.seq != expectedBefore {
            sendFreezeAckToServer(slot: slot, mid: mid, generated: generated)
        }
        // Let the device that holds the flow now learn that the server has its data.
        if m.newDeviceEstablished && !m.senderTowardOldDevice {
            let ack = ackTowardNewDevice(slot: slot, m)
            if m.lastAckToNewDevice.map({ ack.greaterThan($0) }) ?? true {
                if !transmitNew(slot: slot, mid: mid, now: now, generated: generated) {
                    sendPureAck(slot: slot, mid: mid, generated: generated)
                }
            } else {
                transmitNew(slot: slot, mid: mid, now: now, generated: generated)
            }
        } else if m.phase == .paused || m.senderTowardOldDevice {
            // Only news for the old device: the server acknowledged more of its bytes (or, once
            // the cache goes back to it, changed its window). Repeating the same ACK for each
            // cached segment would look like duplicate acks to it (RFC 5681 §2).
            let after = table[slot: slot]!.toDevice
            let ackAdvanced = after.highestAck.map { a in before.highestAck.map { a.greaterThan($0) } ?? true } ?? false
            if ackAdvanced || (m.senderTowardOldDevice && after.lastWindow != before.lastWindow) {
                sendAckToOldDevice(slot: slot, mid: mid, generated: generated)
            }
            if m.senderTowardOldDevice { transmitNew(slot: slot, mid: mid, now: now, generated: generated) }
        }
        if m.phase == .paused && isSettled(slot: slot, m) { cut(slot: slot, mid: mid, now: now, generated: generated) }
        return .consumed
    }

    // MARK: Steps

    private func isSettled(slot: Int, _ m: MigrationState) -> Bool {
        let f = table[slot: slot]!
        let deviceCaughtUp = (f.toServer.highestAck ?? m.forwardedToDeviceEnd).greaterThanOrEqual(m.forwardedToDeviceEnd)
        let serverCaughtUp = (f.toDevice.highestAck ?? m.forwardedToServerEnd).greaterThanOrEqual(f.toServer.nextSeq ?? m.forwardedToServerEnd)
        return deviceCaughtUp && serverCaughtUp
    }

    /// Fixes the cut offsets (DESIGN §6 step 3): the old device's highest ack, and what the
    /// server acknowledged of the old device's stream.
    private func cut(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        let f = table[slot: slot]!
        var m = migrations[mid]!
        guard m.phase == .paused else { return }
        let copyStart = f.inFlight!.start
        var cutToDevice = f.toServer.highestAck ?? m.forwardedToDeviceEnd
        if cutToDevice.lessThan(copyStart) { cutToDevice = copyStart } // never before what the copy holds
        m.cutToDevice = cutToDevice
        m.cutToServer = f.toDevice.highestAck ?? m.forwardedToServerEnd
        m.cutToServerView = f.toServer.seqOffset.apply(m.cutToServer!)
        m.enter(.oldDeviceCut, at: now)
        migrations[mid] = m
        withFlow(slot) { $0.inFlight!.acknowledge(cutToDevice) }
        logger.info("old device cut", metadata: [
            "migration.id": "\(mid)", "migration.phase": "old-device-cut",
            "migration.cut_to_device": "\(cutToDevice.distance(to: f.streamStartToDevice) == 0 ? 0 : f.streamStartToDevice.distance(to: cutToDevice))",
        ])
        if m.newDevice != nil { sendSynAck(slot: slot, mid: mid, now: now, generated: generated) }
    }

    private func synAckSeq(slot: Int, _ m: MigrationState) -> SeqNumber {
        table[slot: slot]!.toDevice.seqOffset.apply(m.cutToDevice!) - 1
    }

    /// Answers the new device's SYN as the server would (options compatible with the original
    /// connection: RFC 7323 §2.2 window scale and §3.2 timestamps only when both the original
    /// connection and the new device have them; SACK likewise, RFC 2018 §2).
    private func sendSynAck(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        let f = table[slot: slot]!
        var m = migrations[mid]!
        guard let isn = m.newDeviceISN, let syn = m.newDeviceSyn, let newDevice = m.newDevice, let cutToServer = m.cutToServer else { return }
        let originalScaling = f.deviceSyn.windowScale != nil && f.serverSyn.windowScale != nil
        let scaling = originalScaling && syn.windowScale != nil
        m.newDeviceServerShift = scaling ? (f.serverSyn.windowScale ?? 0) : 0
        m.scalingWithNewDevice = scaling
        let timestamps = f.deviceSyn.timestamps && f.serverSyn.timestamps && syn.timestamps
        var options: [TCPOption] = [.maximumSegmentSize(f.serverSyn.mss ?? 536)]
        if f.deviceSyn.sackPermitted && f.serverSyn.sackPermitted && syn.sackPermitted { options.append(.sackPermitted) }
        if timestamps {
            options.append(.timestamp(value: f.toDevice.lastTSval ?? 1, echoReply: m.newDeviceTSRecent ?? 0))
        }
        if scaling { options.append(.noOperation); options.append(.windowScale(f.serverSyn.windowScale!)) }
        // Sequence spaces: the new device's data continues the old device's stream at the cut.
        // Fixed once it is connected (a late duplicate SYN must not move the offsets under the
        // segments already rewritten with them).
        if !m.newDeviceEstablished {
            m.newToServerOffset = SequenceOffset(from: isn + 1, to: f.toServer.seqOffset.apply(cutToServer))
            if timestamps, let last = m.lastTSvalToServer, let first = m.newDeviceTSRecent {
                m.newTSOffset = (last &+ 1) &- first
            }
        }
        m.synAckSent = true
        m.synAckSentAt = now
        migrations[mid] = m
        // A SYN-ACK's window is never scaled (RFC 7323 §2.2).
        let window = WindowScale(from: f.serverWindowShift, to: 0).translate(f.toDevice.lastWindow)
        emit(TCPPacketSpec(source: f.original, destination: newDevice, seq: synAckSeq(slot: slot, m), ack: isn + 1,
                           flags: [.syn, .ack], window: window, options: options), generated: generated)
    }

    /// How long a SYN-ACK waits for the handshake's ACK: 1 s, doubled on each retransmission,
    /// at most 8 s (RFC 6298 §2.1, §5.5).
    static func synAckTimeout(after retransmissions: Int) -> UInt64 {
        1_000_000_000 << UInt64(min(retransmissions, 3))
    }

    /// The shift the new device applies to its own windows: its SYN's, if the SYN-ACK offered scaling.
    private func newDeviceOwnShift(_ m: MigrationState) -> UInt8 {
        m.scalingWithNewDevice ? (m.newDeviceSyn?.windowScale ?? 0) : 0
    }

    private func startSenderTowardNewDevice(slot: Int, mid: MigrationID, now: Instant) {
        let f = table[slot: slot]!
        var m = migrations[mid]!
        let timestamps = f.deviceSyn.timestamps && f.serverSyn.timestamps && (m.newDeviceSyn?.timestamps ?? false)
        // The MSS counts no options: the timestamp option each segment carries comes off it
        // (RFC 9293 §3.7.1, RFC 6691), or full segments exceed the device's MTU.
        let mss = min(Int(m.newDeviceSyn?.mss ?? 536), Int(f.serverSyn.mss ?? 1460), 1460) - (timestamps ? TCPOption.alignedTimestampLength : 0)
        let window = WindowScale.bytes(m.newDeviceWindowField, shift: newDeviceOwnShift(m)) // the handshake ACK's, scaled
        let copy = f.inFlight!
        m.sender = EmulatedSender(from: m.cutToDevice!, to: copy.end, fin: m.serverFinSeq == copy.end, mss: mss, peerWindow: window)
        m.bytesCached = UInt64(m.cutToDevice!.distance(to: copy.end))
        migrations[mid] = m
    }

    /// Sends what the emulated sender allows now. Returns whether anything was sent.
    @discardableResult
    private func transmitNew(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) -> Bool {
        guard var sender = migrations[mid]?.sender else { return false }
        let room = (generated.capacity - generated.count)
        guard room > 0 else { return false }
        let segments = sender.segmentsToSend(now: now, limit: room)
        migrations[mid]!.sender = sender
        transmit(segments, slot: slot, mid: mid, now: now, generated: generated)
        return !segments.isEmpty
    }

    /// Builds the emulated sender's segments from the cache, toward whichever device it serves.
    private func transmit(_ segments: [EmulatedSender.Segment], slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        guard !segments.isEmpty else { return }
        let f = table[slot: slot]!
        let m = migrations[mid]!
        let (device, ack, ts, window) = towardDevice(slot: slot, m)
        for s in segments {
            guard let payload = f.inFlight!.bytes(from: s.seq, length: s.length) else { continue }
            var flags: TCPFlags = [.ack]
            if s.length > 0 { flags.insert(.psh) }
            if s.fin { flags.insert(.fin) }
            let spec = TCPPacketSpec(source: f.original, destination: device, seq: f.toDevice.seqOffset.apply(s.seq), ack: ack,
                                     flags: flags, window: window, options: ts.map { TCPOption.alignedTimestamp(value: $0.0, echoReply: $0.1) } ?? [])
            emit(spec, payload: payload, generated: generated)
        }
        migrations[mid]!.lastAckToNewDevice = m.senderTowardOldDevice ? nil : ack
    }

    private func sendPureAck(slot: Int, mid: MigrationID, generated: PacketBatch) {
        let f = table[slot: slot]!
        let m = migrations[mid]!
        guard let sender = m.sender else { return }
        let (device, ack, ts, window) = towardDevice(slot: slot, m)
        emit(TCPPacketSpec(source: f.original, destination: device, seq: f.toDevice.seqOffset.apply(sender.next), ack: ack,
                           flags: .ack, window: window,
                           options: ts.map { TCPOption.alignedTimestamp(value: $0.0, echoReply: $0.1) } ?? []),
             generated: generated)
        migrations[mid]!.lastAckToNewDevice = ack
    }

    /// Addressing of segments the emulated sender makes: destination, ack (the server's ack of
    /// that device's data, in its space), timestamps (server clock, device's recent), window.
    private func towardDevice(slot: Int, _ m: MigrationState) -> (IPv4Endpoint, SeqNumber, (UInt32, UInt32)?, UInt16) {
        let f = table[slot: slot]!
        if m.senderTowardOldDevice {
            let ack = f.toDevice.highestAck ?? m.forwardedToServerEnd
            let ts: (UInt32, UInt32)? = f.currentDeviceTimestamps ? (f.toDevice.lastTSval ?? 1, f.toServer.lastTSval ?? 0) : nil
            return (m.oldDevice, ack, ts, WindowScale(from: f.serverWindowShift, to: f.currentDeviceViewOfServerShift).translate(f.toDevice.lastWindow))
        }
        let ts: (UInt32, UInt32)? = (f.deviceSyn.timestamps && f.serverSyn.timestamps && (m.newDeviceSyn?.timestamps ?? false))
            ? (f.toDevice.lastTSval ?? 1, m.newDeviceTSRecent ?? 0) : nil
        return (m.newDevice!, ackTowardNewDevice(slot: slot, m), ts,
                WindowScale(from: f.serverWindowShift, to: m.newDeviceServerShift).translate(f.toDevice.lastWindow))
    }

    private func ackTowardNewDevice(slot: Int, _ m: MigrationState) -> SeqNumber {
        let f = table[slot: slot]!
        _ = f
        let cutServerView = m.cutToServerView!
        return m.newToServerOffset.reverse(SeqNumber.max(m.serverAckServerView, cutServerView))
    }

    /// What the proxy acknowledges to the server: everything it holds, FIN included.
    private func preAckPoint(slot: Int) -> SeqNumber {
        let f = table[slot: slot]!
        let end = f.inFlight!.end
        if let mid = f.migration, migrations[mid]?.serverFinSeq == end { return end + 1 }
        return end
    }

    /// An ACK to the server: next expected, window 0 (TSMP draft §4.3.1).
    private func sendFreezeAckToServer(slot: Int, mid: MigrationID, generated: PacketBatch) {
        let f = table[slot: slot]!
        let m = migrations[mid]!
        let seq: SeqNumber
        if m.newDeviceEstablished, let next = m.newDeviceNext {
            seq = m.newToServerOffset.apply(next)
        } else {
            seq = f.toServer.seqOffset.apply(f.toServer.nextSeq ?? m.forwardedToServerEnd)
        }
        var options: [TCPOption] = []
        if f.deviceSyn.timestamps && f.serverSyn.timestamps {
            options = TCPOption.alignedTimestamp(value: m.lastTSvalToServer ?? 1, echoReply: f.toDevice.lastTSval ?? 0)
        }
        emit(TCPPacketSpec(source: IPv4Endpoint(config.nat, f.natPort), destination: f.server, seq: seq,
                           ack: preAckPoint(slot: slot), flags: .ack, window: 0, options: options), generated: generated)
    }

    /// Window 0 to the old device, acknowledging what the server has of its data.
    private func sendAckToOldDevice(slot: Int, mid: MigrationID, generated: PacketBatch) {
        let f = table[slot: slot]!
        let m = migrations[mid]!
        guard m.sender == nil || m.senderTowardOldDevice, let ack = f.toDevice.highestAck else { return }
        let seq = m.senderTowardOldDevice ? m.sender!.next : m.forwardedToDeviceEnd
        var options: [TCPOption] = []
        if f.currentDeviceTimestamps {
            options = TCPOption.alignedTimestamp(value: f.toDevice.lastTSval ?? 1, echoReply: f.toServer.lastTSval ?? 0)
        }
        let window: UInt16 = m.senderTowardOldDevice
            ? WindowScale(from: f.serverWindowShift, to: f.currentDeviceViewOfServerShift).translate(f.toDevice.lastWindow) : 0
        emit(TCPPacketSpec(source: f.original, destination: m.oldDevice, seq: f.toDevice.seqOffset.apply(seq), ack: ack,
                           flags: .ack, window: window, options: options), generated: generated)
    }

    /// Step 5: the new device has everything; give the server its real window and go back to
    /// plain splicing with the new offsets.
    private func splice(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        var m = migrations[mid]!
        let before = table[slot: slot]!
        let sender = m.sender!
        let syn = m.newDeviceSyn ?? SynOptions()
        let ownShift = newDeviceOwnShift(m)
        // The server's ack of the device side's stream, in the new device's space (the old
        // device's numbers mean nothing there; a later migration compares against this).
        let serverAckInNewSpace = ackTowardNewDevice(slot: slot, m)
        retire(DeviceSideKey(device: m.oldDevice, original: before.original), now: now)
        table.promoteAlias(slot: slot)
        withFlow(slot) { f in
            f.toServer.seqOffset = m.newToServerOffset
            f.toServer.nextSeq = m.newDeviceNext
            f.toDevice.highestAck = serverAckInNewSpace
            f.toServer.finSeq = m.newDeviceFinSeq
            f.toServer.finAcked = false
            f.toServer.highestAck = sender.finalSeq
            f.toServer.tsOffset = m.newTSOffset
            f.toServer.lastTSval = m.newDeviceTSRecent
            f.toServer.lastWindow = m.newDeviceWindowField
            if f.deviceWindowShift != ownShift || f.deviceShiftOverride != nil { f.deviceShiftOverride = ownShift }
            // Reset too when equal: a previous migration may have left another device's shift.
            f.deviceViewOfServerShift = m.newDeviceServerShift != f.serverWindowShift ? m.newDeviceServerShift : nil
            let originalMSS = before.deviceSyn.mss ?? 536
            // Pieces keep the server's timestamp option (or its NOPs): 12 bytes off the MSS.
            let optionBytes = UInt16(before.deviceSyn.timestamps && before.serverSyn.timestamps ? TCPOption.alignedTimestampLength : 0)
            let newMSS = syn.mss ?? 536
            f.deviceMSS = newMSS < originalMSS ? max(newMSS, 64 + optionBytes) - optionBytes : nil
            f.deviceLacksSACK = before.deviceSyn.sackPermitted && before.serverSyn.sackPermitted && !syn.sackPermitted
            f.deviceLacksTimestamps = before.deviceSyn.timestamps && before.serverSyn.timestamps && !syn.timestamps
            inFlightStorageBytes -= f.inFlight!.releaseStorage()
            f.inFlight = InFlightCopy(start: sender.finalSeq, cap: config.limits.inFlightPerFlow)
            f.migration = nil
            if let fin = m.serverFinSeq { f.toDevice.finAcked = sender.finalSeq.greaterThan(fin) }
        }
        // The new device's real window, translated to the scale the server knows (RFC 7323 §2.3).
        let f = table[slot: slot]!
        var options: [TCPOption] = []
        if f.deviceSyn.timestamps && f.serverSyn.timestamps {
            options = TCPOption.alignedTimestamp(value: m.lastTSvalToServer ?? ((m.newDeviceTSRecent ?? 0) &+ m.newTSOffset), echoReply: f.toDevice.lastTSval ?? 0)
        }
        emit(TCPPacketSpec(source: IPv4Endpoint(config.nat, f.natPort), destination: f.server,
                           seq: m.newToServerOffset.apply(m.newDeviceNext ?? (m.newDeviceISN! + 1)),
                           ack: sender.finalSeq, flags: .ack,
                           window: WindowScale(from: ownShift, to: f.deviceWindowShift).translate(m.newDeviceWindowField),
                           options: options),
             generated: generated)
        // The old device's sub-connection ends exactly at its RCV.NXT (RFC 5961 §3.2).
        emit(TCPPacketSpec(source: f.original, destination: m.oldDevice, seq: f.toDevice.seqOffset.apply(m.cutToDevice!),
                           flags: .rst, window: 0), generated: generated)
        m.enter(.spliced, at: now)
        finish(m, now: now)
        logger.info("migration spliced", metadata: [
            "migration.id": "\(mid)", "flow.id": "\(m.flowID)", "migration.phase": "spliced",
            "migration.new_device": "\(m.newDevice!)", "migration.bytes_cached": "\(m.bytesCached)",
        ])
    }

    /// Step 6: back to the old device; the cache goes to it the same way.
    private func rollback(slot: Int, mid: MigrationID, reason: String, now: Instant, generated: PacketBatch) {
        if migrations[mid]!.phase == .paused { cut(slot: slot, mid: mid, now: now, generated: generated) }
        if let isn = migrations[mid]!.newDeviceISN, let next = migrations[mid]!.newDeviceNext, next != isn + 1 {
            // The server already has bytes of the new device's stream past the cut: the old
            // device's stream can't continue there, so going back would corrupt it.
            let sent = (isn + 1).distance(to: next)
            abandon(slot: slot, mid: mid, reason: "\(reason), after the new device had sent \(sent) bytes to the server",
                    now: now, generated: generated)
            return
        }
        var m = migrations[mid]!
        let f = table[slot: slot]!
        if let newDevice = m.newDevice, m.synAckSent {
            let seq = m.sender.map { f.toDevice.seqOffset.apply($0.next) } ?? synAckSeq(slot: slot, m) + 1
            emit(TCPPacketSpec(source: f.original, destination: newDevice, seq: seq, flags: .rst, window: 0), generated: generated)
        }
        if let newDevice = m.newDevice { retire(DeviceSideKey(device: newDevice, original: f.original), now: now) }
        table.setAlias(nil, slot: slot)
        m.rollbackReason = reason
        m.senderTowardOldDevice = true
        let copy = f.inFlight!
        let window = WindowScale.bytes(f.toServer.lastWindow, shift: f.currentDeviceShift)
        m.sender = EmulatedSender(from: m.cutToDevice!, to: copy.end, fin: m.serverFinSeq == copy.end,
                                  mss: f.segmentSizeTowardDevice, peerWindow: window)
        m.bytesCached = UInt64(m.cutToDevice!.distance(to: copy.end))
        migrations[mid] = m
        logger.warning("migration rolling back", metadata: ["migration.id": "\(mid)", "migration.reason": "\(reason)"])
        if m.sender!.isComplete {
            finishRollback(slot: slot, mid: mid, now: now, generated: generated)
        } else {
            transmitNew(slot: slot, mid: mid, now: now, generated: generated)
        }
    }

    private func finishRollback(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        var m = migrations[mid]!
        let sender = m.sender!
        withFlow(slot) { f in
            f.migration = nil
            f.toServer.highestAck = sender.finalSeq
            f.toDevice.nextSeq = SeqNumber.max(f.toDevice.nextSeq ?? sender.finalSeq, sender.finalSeq)
        }
        let f = table[slot: slot]!
        var options: [TCPOption] = []
        if f.deviceSyn.timestamps && f.serverSyn.timestamps {
            options = TCPOption.alignedTimestamp(value: m.lastTSvalToServer ?? 1, echoReply: f.toDevice.lastTSval ?? 0)
        }
        // The device's window field in the scale the server applies (they differ after a migration).
        emit(TCPPacketSpec(source: IPv4Endpoint(config.nat, f.natPort), destination: f.server,
                           seq: f.toServer.seqOffset.apply(f.toServer.nextSeq ?? m.forwardedToServerEnd),
                           ack: sender.finalSeq, flags: .ack,
                           window: WindowScale(from: f.currentDeviceShift, to: f.deviceWindowShift).translate(f.toServer.lastWindow),
                           options: options),
             generated: generated)
        // The old device still holds the pause's window 0 when nothing went back to it: reopen it.
        if m.cutToDevice == sender.finalSeq { sendAckToOldDevice(slot: slot, mid: mid, generated: generated) }
        m.enter(.rolledBack, at: now)
        finish(m, now: now)
    }

    /// The old device did not take the cache back either: end the flow on both sides.
    /// Ends the flow on every side (the migration can neither finish nor go back): RSTs at
    /// each receiver's RCV.NXT as last seen (RFC 5961 §3.2), the flow left to linger as reset.
    private func abandon(slot: Int, mid: MigrationID, reason: String, now: Instant, generated: PacketBatch) {
        var m = migrations[mid]!
        let f = table[slot: slot]!
        emit(TCPPacketSpec(source: IPv4Endpoint(config.nat, f.natPort), destination: f.server,
                           seq: m.serverAckServerView, flags: .rst, window: 0), generated: generated)
        emit(TCPPacketSpec(source: f.original, destination: m.oldDevice,
                           seq: f.toDevice.seqOffset.apply(m.cutToDevice ?? m.forwardedToDeviceEnd), flags: .rst, window: 0),
             generated: generated)
        if let newDevice = m.newDevice, m.synAckSent {
            let seq = m.sender.map { f.toDevice.seqOffset.apply($0.next) } ?? synAckSeq(slot: slot, m) + 1
            emit(TCPPacketSpec(source: f.original, destination: newDevice, seq: seq, flags: .rst, window: 0), generated: generated)
            retire(DeviceSideKey(device: newDevice, original: f.original), now: now)
            table.setAlias(nil, slot: slot)
        }
        withFlow(slot) { $0.migration = nil; $0.state = .reset }
        m.rollbackReason = reason
        m.enter(.aborted, at: now)
        finish(m, now: now)
        logger.warning("migration aborted, flow reset", metadata: ["migration.id": "\(mid)", "migration.reason": "\(reason)"])
    }

    private func finish(_ m: MigrationState, now: Instant) {
        migrations[m.id] = nil
        recordFinished(report(m, now: now))
    }

    /// Keeps the last 1000 finished migrations' reports.
    func recordFinished(_ report: MigrationReport) {
        finishedMigrations[report.id] = report
        finishedOrder.append(report.id)
        if finishedOrder.count > 1000 { finishedMigrations[finishedOrder.removeFirst()] = nil }
    }

    private func report(_ m: MigrationState, now: Instant) -> MigrationReport {
        let f = table.slot(id: m.flowID).flatMap { table[slot: $0] }
        func secs(_ t: Instant) -> Double { Double(t.nanoseconds &- m.requestedAt.nanoseconds) / 1e9 }
        var cutToDevice: UInt64?
        var cutToServer: UInt64?
        if let f, let c = m.cutToDevice { cutToDevice = UInt64(f.streamStartToDevice.distance(to: c)) }
        if let f, let c = m.cutToServerView { cutToServer = UInt64(f.streamStartToServer.distance(to: c)) }
        return MigrationReport(
            id: m.id, flow: m.flowID, oldDevice: m.oldDevice, target: m.target, newDevice: m.newDevice, phase: m.phase,
            phases: m.phaseTimes.map { .init(phase: $0.0, seconds: secs($0.1)) },
            cutOffsetToDevice: cutToDevice, cutOffsetToServer: cutToServer, bytesCached: m.bytesCached,
            retransmissions: m.sender?.retransmissions ?? 0, timeouts: m.sender?.timeouts ?? 0, reason: m.rollbackReason)
    }

    // MARK: Packet helpers

    /// Rewrites a device's segment toward the server while the proxy holds the flow frozen:
    /// NAT, the given sequence offset, the proxy's pre-ack and window 0, TSval shifted.
    private func rewriteTowardServer(_ packet: TCPIPv4Packet, flow: Flow, seqOffset: SequenceOffset, tsOffset: UInt32, preAck: SeqNumber) {
        let tcp = packet.tcp
        packet.setSource(IPv4Endpoint(config.nat, flow.natPort))
        packet.setDestination(flow.server)
        tcp.setSeq(seqOffset.apply(tcp.seq))
        var flags = tcp.flags
        flags.insert(.ack)
        tcp.setFlags(flags)
        tcp.setAck(preAck)
        tcp.setWindow(0)
        if tsOffset != 0 { shiftTimestamp(tcp, valueBy: tsOffset, echoBy: 0) }
    }

    func shiftTimestamp(_ tcp: TCPSegment, valueBy: UInt32, echoBy: UInt32) {
        let options = tcp.options
        guard let (slot, value) = options.first(kind: TCPOptionKind.timestamp),
              case .timestamp(let v, let e) = value else { return }
        options.setTimestamp(slot, value: v &+ valueBy, echoReply: e &- echoBy)
    }

    func neutraliseOptions(_ tcp: TCPSegment, kind: UInt8) {
        let options = tcp.options
        for slot in options where slot.kind == kind { options.neutralise(slot) }
    }

    func emit(_ spec: TCPPacketSpec, payload: [UInt8] = [], generated: PacketBatch) {
        guard generated.count < generated.capacity else { counters.generatedOverflow &+= 1; return }
        let n = payload.withUnsafeBytes { p in TCPPacketBuilder.write(spec, payload: p, into: generated.slotBuffer(generated.count)) }
        guard let n else { counters.generatedOverflow &+= 1; return }
        generated.commitNext(length: n, direction: .outbound)
        counters.packetsGenerated &+= 1
    }
}

/// The device holding a flow now, which after an earlier migration is not the one whose SYN
/// fixed the flow's options: what a rollback to it must use.
private extension Flow {
    /// The shift the device applies to its own window fields.
    var currentDeviceShift: UInt8 { deviceShiftOverride ?? deviceWindowShift }
    /// The shift the device applies to the server's window fields.
    var currentDeviceViewOfServerShift: UInt8 { deviceViewOfServerShift ?? serverWindowShift }
    /// The device and the server exchange timestamps (RFC 7323).
    var currentDeviceTimestamps: Bool { deviceSyn.timestamps && serverSyn.timestamps && !deviceLacksTimestamps }
    /// Payload bytes per segment the proxy sends the device: its MSS less the timestamp option
    /// (RFC 9293 §3.7.1); `deviceMSS` is already net of it.
    var segmentSizeTowardDevice: Int {
        if let mss = deviceMSS { return Int(mss) }
        return min(Int(deviceSyn.mss ?? 536), 1460) - (deviceSyn.timestamps && serverSyn.timestamps ? TCPOption.alignedTimestampLength : 0)
    }
}
