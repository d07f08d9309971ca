import Logging
import Wire

/// The steps that move a migration from one phase to the next (DESIGN §6 steps 3-6).
extension SpliceEngine {
    /// Both directions settled: the old device acknowledged what it was sent before the
    /// pause, the server what the old device sent.
    func isSettled(_ f: Flow, _ freeze: Freeze) -> Bool {
        let deviceCaughtUp = (f.toServer.highestAck ?? freeze.forwardedToDeviceEnd).greaterThanOrEqual(freeze.forwardedToDeviceEnd)
        let serverCaughtUp = (f.toDevice.highestAck ?? freeze.forwardedToServerEnd)
            .greaterThanOrEqual(f.toServer.nextSeq ?? freeze.forwardedToServerEnd)
        return deviceCaughtUp && serverCaughtUp
    }

    /// The bytes the old device sent that the server has not acknowledged, if any: no copy of
    /// that direction is kept, so a cut over them could splice the new device's bytes where
    /// the old device's may still arrive.
    func bytesUnacknowledgedByServer(_ f: Flow, _ freeze: Freeze) -> UInt32? {
        let sent = f.toServer.nextSeq ?? freeze.forwardedToServerEnd
        let acked = f.toDevice.highestAck ?? freeze.forwardedToServerEnd
        return acked.lessThan(sent) ? acked.distance(to: sent) : nil
    }

    /// `paused` -> `cut` (DESIGN §6 step 3): fixes the cut offsets, the old device's highest
    /// ack and what the server acknowledged of the old device's stream.
    func cut(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        guard let f = table[slot: slot], var m = migrations[mid], case .paused(let freeze) = m.phase else { return }
        let copyStart = f.inFlight?.start ?? freeze.forwardedToDeviceEnd
        var cutToDevice = f.toServer.highestAck ?? freeze.forwardedToDeviceEnd
        if cutToDevice.lessThan(copyStart) { cutToDevice = copyStart } // never before what the copy holds
        let cutToServer = f.toDevice.highestAck ?? freeze.forwardedToServerEnd
        let offsets = CutOffsets(toDevice: cutToDevice, toServer: cutToServer, toServerView: f.toServer.seqOffset.apply(cutToServer))
        m.phase = .cut(freeze, offsets)
        m.enter(.oldDeviceCut, at: now)
        migrations[mid] = m
        journalPhases(m)
        withFlow(slot) { $0.inFlight?.acknowledge(cutToDevice) }
        logger.info("old device cut", metadata: [
            "migration.id": "\(mid)", "migration.phase": "old-device-cut",
            "migration.cut_to_device": "\(cutToDevice.distance(to: f.streamStartToDevice) == 0 ? 0 : f.streamStartToDevice.distance(to: cutToDevice))",
        ])
        if freeze.newDevice != nil { sendSynAck(slot: slot, mid: mid, now: now, generated: generated) }
    }

    /// Step 5: the new device has everything; give the server its real window and go back to
    /// plain splicing with the new offsets.
    func splice(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        guard let before = table[slot: slot], var m = migrations[mid], case .resuming(let freeze, let cut, let sender) = m.phase,
              let h = freeze.newDevice else { return }
        let syn = h.syn
        let ownShift = h.ownShift
        // The server's ack of the device side's stream, in the new device's space (the old
        // device's numbers mean nothing there; a later migration compares against this).
        let serverAckInNewSpace = ackTowardNewDevice(freeze, cut, h)
        retire(DeviceSideKey(device: freeze.oldDevice, original: before.original), now: now)
        table.promoteAlias(slot: slot)
        let perFlowCap = config.limits.inFlightPerFlow
        var released = 0
        withFlow(slot) { f in
            f.toServer.seqOffset = h.toServerOffset
            f.toServer.nextSeq = h.next
            f.toDevice.highestAck = serverAckInNewSpace
            f.toServer.finSeq = h.finSeq
            f.toServer.finAcked = false
            f.toServer.highestAck = sender.finalSeq
            f.toServer.tsOffset = h.tsOffset
            f.toServer.lastTSval = h.tsRecent
            f.toServer.lastWindow = h.windowField
            f.deviceIP = h.ip
            if f.deviceWindowShift != ownShift || f.deviceShiftOverride != nil { f.deviceShiftOverride = ownShift }
            // Reset too when equal: a previous migration may have left another device's shift.
            f.deviceViewOfServerShift = h.serverShift != f.serverWindowShift ? h.serverShift : nil
            let originalMSS = before.deviceSyn.mss ?? 536
            // Pieces keep the server's timestamp option (or its NOPs): its bytes come off the MSS.
            let optionBytes = UInt16(before.deviceSyn.timestamps && before.serverSyn.timestamps ? TCPOption.alignedTimestampLength : 0)
            let newMSS = syn.mss ?? 536
            f.deviceMSS = newMSS < originalMSS ? max(newMSS, 64 + optionBytes) - optionBytes : nil
            f.deviceLacksSACK = before.deviceSyn.sackPermitted && before.serverSyn.sackPermitted && !syn.sackPermitted
            f.deviceLacksTimestamps = before.deviceSyn.timestamps && before.serverSyn.timestamps && !syn.timestamps
            f.deviceLacksECN = before.deviceSyn.ecn && before.serverSyn.ecn && !syn.ecn
            Self.rebaseSynthesizedClock(&f, after: freeze.lastTSvalToServer, now: now)
            released = f.inFlight?.releaseStorage() ?? 0
            f.inFlight = InFlightCopy(start: sender.finalSeq, cap: perFlowCap)
            f.migration = nil
            if let fin = freeze.serverFinSeq { f.toDevice.finAcked = sender.finalSeq.greaterThan(fin) }
        }
        inFlightStorageBytes -= released
        // The new device's real window, translated to the scale the server knows (RFC 7323 §2.3).
        guard let f = table[slot: slot] else { return }
        var options: [TCPOption] = []
        let tsval = freeze.lastTSvalToServer ?? ((h.tsRecent ?? 0) &+ h.tsOffset)
        if f.deviceSyn.timestamps && f.serverSyn.timestamps {
            options = TCPOption.alignedTimestamp(value: tsval, echoReply: f.toDevice.lastTSval ?? 0)
        }
        let window = WindowScale(from: ownShift, to: f.deviceWindowShift).translate(h.windowField)
        emit(TCPPacketSpec(source: natEndpoint(f), destination: f.server,
                           seq: h.toServerOffset.apply(h.next ?? (h.isn + 1)),
                           ack: sender.finalSeq, flags: .ack, window: window, options: options, tos: f.dscpToServer)
                .imitating(h.ip),
             generated: generated)
        // Kept until the server shows it took the window (a zero one is the new device's to open).
        if window > 0 { watchWindowReopen(f, migration: mid, edge: sender.finalSeq, tsval: tsval, now: now) }
        // The old device's sub-connection ends exactly at its RCV.NXT (RFC 5961 §3.2), from the
        // address it talked to (the flow's original is now the new device's, maybe of the other family).
        emit(TCPPacketSpec(source: original(f, for: freeze.oldDevice.family) ?? f.original, destination: freeze.oldDevice, seq: f.toDevice.seqOffset.apply(cut.toDevice),
                           flags: .rst, window: 0).imitating(f.serverIP), generated: generated)
        m.enter(.spliced, at: now)
        finish(m, now: now)
        logger.info("migration spliced", metadata: [
            "migration.id": "\(mid)", "flow.id": "\(m.flowID)", "migration.phase": "spliced",
            "migration.new_device": "\(h.endpoint)", "migration.bytes_cached": "\(freeze.bytesCached)",
        ])
    }

    /// Step 6: back to the old device (`rollingBack`); the cache goes to it the same way.
    func rollback(slot: Int, mid: MigrationID, reason: String, now: Instant, generated: PacketBatch) {
        if migrations[mid]?.isPaused == true { cut(slot: slot, mid: mid, now: now, generated: generated) }
        guard let f = table[slot: slot], var m = migrations[mid], let copy = f.inFlight else { return }
        let freeze: Freeze, cut: CutOffsets
        switch m.phase {
        case .cut(let fr, let c), .resuming(let fr, let c, _): (freeze, cut) = (fr, c)
        case .awaitingState, .paused, .rollingBack: return
        }
        if let h = freeze.newDevice, let next = h.next, next != h.isn + 1 {
            // The server already has bytes of the new device's stream past the cut: the old
            // device's stream can't continue there, so going back would corrupt it.
            let sent = (h.isn + 1).distance(to: next)
            abandon(slot: slot, mid: mid, reason: "\(reason), after the new device had sent \(sent) bytes to the server",
                    now: now, generated: generated)
            return
        }
        if let h = freeze.newDevice, h.synAckSent {
            let seq = m.sender.map { f.toDevice.seqOffset.apply($0.next) } ?? synAckSeq(f, cut) + 1
            emit(TCPPacketSpec(source: original(f, for: h.endpoint.family) ?? f.original, destination: h.endpoint, seq: seq,
                               flags: .rst, window: 0).imitating(f.serverIP),
                 generated: generated)
        }
        if let h = freeze.newDevice { retire(DeviceSideKey(device: h.endpoint, original: original(f, for: h.endpoint.family) ?? f.original), now: now) }
        table.setAlias(nil, slot: slot)
        m.reason = reason
        let window = WindowScale.bytes(f.toServer.lastWindow, shift: f.currentDeviceShift)
        let sender = EmulatedSender(from: cut.toDevice, to: copy.end, fin: freeze.serverFinSeq == copy.end,
                                    mss: f.segmentSizeTowardDeviceOnPath, peerWindow: window,
                                    sack: f.deviceSyn.sackPermitted && f.serverSyn.sackPermitted && !f.deviceLacksSACK)
        var back = freeze
        back.bytesCached = UInt64(cut.toDevice.distance(to: copy.end))
        m.phase = .rollingBack(back, cut, sender: sender)
        migrations[mid] = m
        logger.warning("migration rolling back", metadata: ["migration.id": "\(mid)", "migration.reason": "\(reason)"])
        if sender.isComplete {
            finishRollback(slot: slot, mid: mid, now: now, generated: generated)
        } else {
            transmitNew(slot: slot, mid: mid, now: now, generated: generated)
        }
    }

    /// The old device took the cache back: the flow goes on there (`rolledBack`).
    func finishRollback(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        guard var m = migrations[mid], case .rollingBack(let freeze, let cut, let sender) = m.phase else { return }
        withFlow(slot) { f in
            f.migration = nil
            f.toServer.highestAck = sender.finalSeq
            f.toDevice.nextSeq = SeqNumber.max(f.toDevice.nextSeq ?? sender.finalSeq, sender.finalSeq)
            Self.rebaseSynthesizedClock(&f, after: freeze.lastTSvalToServer, now: now)
        }
        guard let f = table[slot: slot] else { return }
        var options: [TCPOption] = []
        if f.deviceSyn.timestamps && f.serverSyn.timestamps {
            options = TCPOption.alignedTimestamp(value: freeze.lastTSvalToServer ?? 1, echoReply: f.toDevice.lastTSval ?? 0)
        }
        // The device's window field in the scale the server applies (they differ after a migration).
        let window = WindowScale(from: f.currentDeviceShift, to: f.deviceWindowShift).translate(f.toServer.lastWindow)
        emit(TCPPacketSpec(source: natEndpoint(f), destination: f.server,
                           seq: f.toServer.seqOffset.apply(f.toServer.nextSeq ?? freeze.forwardedToServerEnd),
                           ack: sender.finalSeq, flags: .ack, window: window, options: options).imitating(f.deviceIP),
             generated: generated)
        if window > 0 { watchWindowReopen(f, migration: mid, edge: sender.finalSeq, tsval: freeze.lastTSvalToServer, now: now) }
        // The old device still holds the pause's window 0 when nothing went back to it: reopen it.
        if cut.toDevice == sender.finalSeq { sendAckToOldDevice(slot: slot, mid: mid, generated: generated) }
        m.enter(.rolledBack, at: now)
        finish(m, now: now)
    }

    /// Ends the flow on every side (the migration can neither finish nor go back): RSTs at
    /// each receiver's RCV.NXT as last seen (RFC 5961 §3.2), the flow left to linger as reset.
    func abandon(slot: Int, mid: MigrationID, reason: String, now: Instant, generated: PacketBatch) {
        guard let f = table[slot: slot], var m = migrations[mid], let freeze = m.freeze else { return }
        emit(TCPPacketSpec(source: natEndpoint(f), destination: f.server,
                           seq: freeze.serverAckServerView, flags: .rst, window: 0).imitating(f.deviceIP), generated: generated)
        emit(TCPPacketSpec(source: original(f, for: freeze.oldDevice.family) ?? f.original, destination: freeze.oldDevice,
                           seq: f.toDevice.seqOffset.apply(m.cutOffsets?.toDevice ?? freeze.forwardedToDeviceEnd), flags: .rst, window: 0)
                .imitating(f.serverIP),
             generated: generated)
        if let h = freeze.newDevice, h.synAckSent, let cut = m.cutOffsets {
            let seq = m.sender.map { f.toDevice.seqOffset.apply($0.next) } ?? synAckSeq(f, cut) + 1
            emit(TCPPacketSpec(source: original(f, for: h.endpoint.family) ?? f.original, destination: h.endpoint, seq: seq,
                               flags: .rst, window: 0).imitating(f.serverIP),
                 generated: generated)
            retire(DeviceSideKey(device: h.endpoint, original: original(f, for: h.endpoint.family) ?? f.original), now: now)
            table.setAlias(nil, slot: slot)
        }
        withFlow(slot) { $0.migration = nil; $0.state = .reset }
        m.reason = reason
        m.enter(.aborted, at: now)
        finish(m, now: now)
        logger.warning("migration aborted, flow reset", metadata: ["migration.id": "\(mid)", "migration.reason": "\(reason)"])
    }

    /// The migration ends: it leaves the table, its report stays.
    func finish(_ m: Migration, now: Instant) {
        migrations[m.id] = nil
        noteCheckpointChange(m.flowID)   // spliced (new device, offsets), rolled back or aborted
        journalPhases(m)
        keepFinishedTimeline(m.id)
        if !newDeviceAssignments.isEmpty { newDeviceAssignments = newDeviceAssignments.filter { $0.value != m.id } }
        recordFinished(report(m, now: now))
    }
}
