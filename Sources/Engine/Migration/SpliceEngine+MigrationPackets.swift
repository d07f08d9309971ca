import Logging
import Wire

/// Packets of a migrating flow, from each of its three parties: the old device, the new
/// device and the server (DESIGN §6). Each input looks at the migration's phase once.
extension SpliceEngine {
    /// A SYN for no known flow: is it the new device of a running migration? With one shard
    /// this engine decides (the lowest id waiting for it); with several, only the migration the
    /// data plane's arbiter assigned this SYN to may take it (`assignNewDeviceSyn`), so two
    /// shards never give one SYN to two migrations nor leave one waiting for a SYN another took.
    func claimMigrationSyn(_ packet: TCPIPPacket, now: Instant, generated: PacketBatch) -> Verdict? {
        guard !migrations.isEmpty else { return nil }
        if shard.count > 1 {
            let key = DeviceSideKey(device: packet.source, original: packet.destination)
            guard let mid = newDeviceAssignments[key] else { return nil }
            let verdict = claimMigrationSyn(packet, candidates: [mid], now: now, generated: generated)
            if verdict != nil || migrations[mid] == nil { newDeviceAssignments[key] = nil }
            return verdict
        }
        return claimMigrationSyn(packet, candidates: migrations.keys.sorted(), now: now, generated: generated)
    }

    /// The arbiter (the data plane's registry, over every shard) gave the opening SYN from
    /// `device` to `original` to migration `id` of this engine: it is claimed for `id` alone.
    /// Ignored for a migration this engine does not run (the SYN is then a plain one). Either
    /// way the 4-tuple is this engine's until it announces it released it (`EngineEvent.released`).
    public func assignNewDeviceSyn(device: IPEndpoint, original: IPEndpoint, to id: MigrationID) {
        let key = DeviceSideKey(device: device, original: original)
        assignedKeys.insert(key)
        guard migrations[id] != nil else { return }
        newDeviceAssignments[key] = id
    }

    /// Claims the SYN for the first of `candidates` that waits for it.
    func claimMigrationSyn(_ packet: TCPIPPacket, candidates ids: [MigrationID], now: Instant, generated: PacketBatch) -> Verdict? {
        let src = packet.source, dst = packet.destination
        // A migration not paused yet holds the SYN (the answer comes after the cut in any case).
        for mid in ids {
            guard let m = migrations[mid], case .awaitingState(var waiting) = m.phase, m.targets(src),
                  let slot = table.slot(id: m.flowID), let f = table[slot: slot], original(f, for: src.family) == dst else { continue }
            if let held = waiting.pendingSyn {
                // Another connection of the same device is another migration's new device.
                let heldSource = held.withUnsafeBytes { HeaderPeek($0).tcpEndpoints?.source }
                guard heldSource == src else { continue }
            } else {
                waiting.pendingSyn = Array(UnsafeRawBufferPointer(packet.datagram))
                migrations[mid]?.phase = .awaitingState(waiting)
                logger.info("new device connecting before the pause", metadata: ["migration.id": "\(mid)", "migration.new_device": "\(src)"])
            }
            return .consumed
        }
        for mid in ids {
            guard var m = migrations[mid], m.awaitsNewDeviceSyn, m.targets(src),
                  let slot = table.slot(id: m.flowID), let f = table[slot: slot], original(f, for: src.family) == dst else { continue }
            m.updateFreeze { $0.newDevice = NewDeviceHandshake(packet) }
            migrations[mid] = m
            noteCheckpointChange(m.flowID)   // a restart refuses this sub-connection
            table.setAlias(DeviceSideKey(device: src, original: dst), slot: slot)
            logger.info("new device connecting", metadata: [
                "migration.id": "\(mid)", "flow.id": "\(m.flowID)", "migration.new_device": "\(src)",
            ])
            if case .cut = m.phase { sendSynAck(slot: slot, mid: mid, now: now, generated: generated) }
            return .consumed
        }
        return nil
    }

    /// A packet from the old or the new device of a migrating flow.
    func migratingFromDevice(_ packet: TCPIPPacket, slot: Int, now: Instant, generated: PacketBatch) -> Verdict {
        guard let flow = table[slot: slot], let mid = flow.migration, let m = migrations[mid],
              let freeze = m.freeze else { return .consumed }
        if let h = freeze.newDevice, packet.source == h.endpoint {
            return fromNewDevice(packet, slot: slot, mid: mid, now: now, generated: generated)
        }
        // The old device.
        let tcp = packet.tcp
        let ackInServerSpace = flow.toDevice.seqOffset.reverse(tcp.ack)
        if tcp.flags.contains(.ack) { noteTimeline(mid, .oldDeviceAck, seq: ackInServerSpace, length: 0, slot: slot, now: now) }
        relayDuplicateReport(fromOldDevice: tcp, slot: slot, mid: mid, generated: generated)
        switch m.phase {
        case .paused, .rollingBack: break
        case .awaitingState, .cut, .resuming: return .consumed // cut: nothing more from it
        }
        if let verdict = migratingReset(tcp, slot: slot, mid: mid, fromServer: false, now: now, generated: generated) { return verdict }
        withFlow(slot) { f in
            f.lastActivity = now
            observe(sender: &f.toServer, other: &f.toDevice, tcp: tcp, timestamp: tcp.options.timestamp?.value,
                    ackInOtherSpace: ackInServerSpace)
        }
        if case .rollingBack(_, _, var sender) = m.phase, tcp.flags.contains(.ack) {
            let window = WindowScale.bytes(tcp.window, shift: flow.currentDeviceShift)
            let again = sender.acknowledge(ackInServerSpace, window: window, segmentSeq: tcp.seq, now: now,
                                           carriesData: tcp.payloadLength > 0 || tcp.flags.contains(.fin),
                                           sack: sender.sackEnabled ? sackBlocks(tcp, flow.toDevice.seqOffset) : [])
            migrations[mid]?.setSender(sender)
            transmit(again, slot: slot, mid: mid, now: now, generated: generated)
            transmitNew(slot: slot, mid: mid, now: now, generated: generated)
            if migrations[mid]?.sender?.isComplete == true {
                finishRollback(slot: slot, mid: mid, now: now, generated: generated)
            }
        }
        if tcp.payloadLength == 0 && !tcp.flags.contains(.fin) {
            if m.isPaused, m.restoring == nil, let f = table[slot: slot], isSettled(f, freeze) {
                cut(slot: slot, mid: mid, now: now, generated: generated)
            }
            return .consumed
        }
        // Data the old device sent before it was frozen goes to the server (DESIGN §6 step 2).
        guard let f = table[slot: slot] else { return .consumed }
        rewriteTowardServer(packet, flow: f, seqOffset: flow.toServer.seqOffset,
                            tsOffset: flow.toServer.tsOffset, preAck: preAckPoint(f, migrations[mid]?.freeze))
        if let (value, echo) = nextFrozenTimestamp(slot: slot, mid: mid, deviceHasTimestamps: !f.deviceLacksTimestamps) {
            return addTimestampTowardServer(packet, value: value, echo: echo, serverMSS: Int(f.mssOfferedToNewDevice), generated: generated)
        }
        if let tsval = tcp.options.timestamp?.value { migrations[mid]?.updateFreeze { $0.lastTSvalToServer = tsval } }
        return .forward
    }

    private func fromNewDevice(_ packet: TCPIPPacket, slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) -> Verdict {
        let tcp = packet.tcp
        let flags = tcp.flags
        guard var m = migrations[mid], let h = m.newDevice else { return .consumed }
        if flags.contains(.rst) {
            if !m.isRollingBack {
                rollback(slot: slot, mid: mid, reason: "the new device reset its connection", now: now, generated: generated)
            }
            return .consumed
        }
        let tsval = tcp.options.timestamp?.value, window = tcp.window
        m.updateNewDevice { h in
            if let tsval { h.tsRecent = tsval }
            h.windowField = window
        }
        migrations[mid] = m
        if flags.contains(.syn) {
            if h.synAckSent { sendSynAck(slot: slot, mid: mid, now: now, generated: generated) } // its retransmission
            return .consumed
        }
        switch m.phase {
        case .cut(_, let cut):
            // Its handshake's ACK: it is connected; the cache goes to it.
            guard h.synAckSent, flags.contains(.ack), let f = table[slot: slot], tcp.ack == synAckSeq(f, cut) + 1 else { return .consumed }
            startSenderTowardNewDevice(slot: slot, mid: mid, now: now)
            logger.info("new device connected", metadata: ["migration.id": "\(mid)", "migration.phase": "new-device-connected"])
        case .resuming:
            break
        case .awaitingState, .paused, .rollingBack:
            return .consumed
        }
        guard let flow = table[slot: slot], case .resuming(_, _, var sender)? = migrations[mid]?.phase else { return .consumed }
        // Its acks drive the emulated sender; they are not forwarded (DESIGN §6 step 4).
        if flags.contains(.ack), let ownShift = migrations[mid]?.newDevice?.ownShift {
            noteTimeline(mid, .newDeviceAck, seq: flow.toDevice.seqOffset.reverse(tcp.ack), length: 0, slot: slot, now: now)
            let window = WindowScale.bytes(tcp.window, shift: ownShift)
            let again = sender.acknowledge(flow.toDevice.seqOffset.reverse(tcp.ack), window: window, segmentSeq: tcp.seq,
                                           now: now, carriesData: tcp.payloadLength > 0 || flags.contains(.fin),
                                           sack: sender.sackEnabled ? sackBlocks(tcp, flow.toDevice.seqOffset) : [])
            migrations[mid]?.setSender(sender)
            transmit(again, slot: slot, mid: mid, now: now, generated: generated)
            transmitNew(slot: slot, mid: mid, now: now, generated: generated)
        }
        var verdict = Verdict.consumed
        if tcp.payloadLength > 0 || flags.contains(.fin), let m = migrations[mid], let freeze = m.freeze,
           let h = freeze.newDevice, let f = table[slot: slot] {
            // Its data continues the old device's stream at the cut (DESIGN §6, both directions).
            let end = tcp.seq + tcp.sequenceLength
            let finSeq = flags.contains(.fin) ? tcp.seq + UInt32(tcp.payloadLength) : nil
            // From its first byte on, the old device can't take the flow back (a restart resets it).
            if h.next == h.isn + 1 && end.greaterThan(h.isn + 1) { noteCheckpointChange(f.id) }
            migrations[mid]?.updateNewDevice { h in
                if let n = h.next { h.next = SeqNumber.max(n, end) }
                if let finSeq { h.finSeq = finSeq }
            }
            rewriteTowardServer(packet, flow: f, seqOffset: h.toServerOffset, tsOffset: h.tsOffset,
                                preAck: preAckPoint(f, freeze))
            neutraliseOptions(tcp, kind: TCPOptionKind.sack)
            if let ts = tcp.options.timestamp { migrations[mid]?.updateFreeze { $0.lastTSvalToServer = ts.value } }
            verdict = .forward
            if let (value, echo) = nextFrozenTimestamp(slot: slot, mid: mid, deviceHasTimestamps: h.syn.timestamps) {
                verdict = addTimestampTowardServer(packet, value: value, echo: echo, serverMSS: Int(f.mssOfferedToNewDevice),
                                                   generated: generated)
            }
        }
        if var m = migrations[mid], m.sender?.isComplete == true {
            m.enter(.cacheDrained, at: now)
            migrations[mid] = m
            journalPhases(m)
            splice(slot: slot, mid: mid, now: now, generated: generated)
        }
        return verdict
    }

    /// A device's SACK blocks (RFC 2018 §3) in the server's sequence space, mapped as its ack is
    /// (`offset`: the server's space to the device's). Empty without a well-formed SACK option.
    private func sackBlocks(_ tcp: TCPSegment, _ offset: SequenceOffset) -> [SackBlock] {
        guard case .sack(let blocks)? = tcp.options.first(kind: TCPOptionKind.sack)?.1 else { return [] }
        return blocks.map { SackBlock(offset.reverse($0.left), offset.reverse($0.right)) }
    }

    /// A packet from the server of a migrating flow: cached and pre-acknowledged, not forwarded.
    func migratingFromServer(_ packet: TCPIPPacket, slot: Int, now: Instant, generated: PacketBatch) -> Verdict {
        let tcp = packet.tcp
        guard let before = table[slot: slot]?.toDevice, let mid = table[slot: slot]?.migration,
              migrations[mid]?.freeze != nil else { return .consumed }
        if let verdict = migratingReset(tcp, slot: slot, mid: mid, fromServer: true, now: now, generated: generated) { return verdict }
        if tcp.payloadLength > 0 { noteTimeline(mid, .serverData, seq: tcp.seq, length: tcp.payloadLength, slot: slot, now: now) }
        let budget = max(0, config.limits.inFlightTotal - inFlightStorageBytes)
        var grew = 0
        var expectedBefore = SeqNumber(0)
        var duplicate: SackBlock?
        withFlow(slot) { f in
            f.lastActivity = now
            let ackInDeviceSpace = f.toServer.seqOffset.reverse(tcp.ack)
            observe(sender: &f.toDevice, other: &f.toServer, tcp: tcp, timestamp: tcp.options.timestamp?.value,
                    ackInOtherSpace: ackInDeviceSpace)
            expectedBefore = f.inFlight?.end ?? expectedBefore
            if tcp.payloadLength > 0, f.inFlight != nil, tcp.seq.lessThan(expectedBefore) {
                // Bytes the proxy already holds (a retransmission, e.g. a tail-loss probe).
                let end = tcp.seq + UInt32(tcp.payloadLength)
                duplicate = SackBlock(tcp.seq, end.lessThan(expectedBefore) ? end : expectedBefore)
            }
            if tcp.payloadLength > 0 {
                grew = f.inFlight?.record(seq: tcp.seq, payload: UnsafeRawBufferPointer(tcp.payload), budget: budget,
                                          restartOnGap: false) ?? 0
            }
        }
        inFlightStorageBytes += grew
        holdOutOfOrder(tcp, slot: slot, mid: mid, copyEndBefore: expectedBefore)
        guard let copyEnd = table[slot: slot]?.inFlight?.end, var m = migrations[mid] else { return .consumed }
        // Cached bytes (and FIN) reach the checkpoint before their pre-ack leaves (write-ahead).
        var durable = copyEnd != expectedBefore
        if tcp.flags.contains(.fin) && tcp.seq + UInt32(tcp.payloadLength) == copyEnd && m.freeze?.serverFinSeq != copyEnd {
            m.updateFreeze { $0.serverFinSeq = copyEnd }
            durable = true
        }
        if durable { noteCheckpointChange(m.flowID) }
        if tcp.flags.contains(.ack) {
            m.updateFreeze { if tcp.ack.greaterThan($0.serverAckServerView) { $0.serverAckServerView = tcp.ack } }
        }
        // Bytes cached after the emulated sender started (still in flight at the pause): it
        // delivers them too, or the server, which has their pre-ack, would never resend them.
        let finCached = m.freeze?.serverFinSeq == copyEnd
        if var sender = m.sender, copyEnd.greaterThan(sender.end) || (finCached && !sender.fin) {
            let oldEnd = sender.end
            sender.extend(to: copyEnd, fin: finCached)
            m.updateFreeze { $0.bytesCached &+= UInt64(oldEnd.distance(to: sender.end)) }
            m.setSender(sender)
        }
        migrations[mid] = m
        // Answer data, FIN and zero-window probes with next-expected and window 0 (TSMP §4.3.1).
        if tcp.payloadLength > 0 || tcp.flags.contains(.fin) || tcp.seq != expectedBefore {
            sendFreezeAckToServer(slot: slot, mid: mid, duplicate: duplicate, latest: tcp.seq, generated: generated)
        }
        switch m.phase {
        case .resuming(let freeze, let cut, _):
            // Let the new device, which holds the flow now, learn that the server has its data.
            guard let h = freeze.newDevice else { break }
            let ack = ackTowardNewDevice(freeze, cut, h)
            if h.lastAck.map({ ack.greaterThan($0) }) ?? true {
                if !transmitNew(slot: slot, mid: mid, now: now, generated: generated) {
                    sendPureAck(slot: slot, mid: mid, generated: generated)
                }
            } else {
                transmitNew(slot: slot, mid: mid, now: now, generated: generated)
            }
        case .paused, .rollingBack:
            // Only news for the old device: the server acknowledged more of its bytes (or, once
            // the cache goes back to it, changed its window). Repeating the same ACK for each
            // cached segment would look like duplicate acks to it (RFC 5681 §2).
            guard let after = table[slot: slot]?.toDevice else { break }
            let ackAdvanced = after.highestAck.map { a in before.highestAck.map { a.greaterThan($0) } ?? true } ?? false
            if ackAdvanced || (m.isRollingBack && after.lastWindow != before.lastWindow) {
                sendAckToOldDevice(slot: slot, mid: mid, generated: generated)
            }
            if m.isRollingBack { transmitNew(slot: slot, mid: mid, now: now, generated: generated) }
        case .awaitingState, .cut:
            break
        }
        if m.isPaused, m.restoring == nil, let f = table[slot: slot], let freeze = m.freeze, isSettled(f, freeze) {
            cut(slot: slot, mid: mid, now: now, generated: generated)
        }
        return .consumed
    }

    /// Rewrites a device's segment toward the server while the proxy holds the flow frozen:
    /// NAT, the given sequence offset, the proxy's pre-ack and window 0, TSval shifted.
    private func rewriteTowardServer(_ packet: TCPIPPacket, flow: Flow, seqOffset: SequenceOffset, tsOffset: UInt32, preAck: SeqNumber) {
        let tcp = packet.tcp
        setAddresses(packet, source: natEndpoint(flow), destination: flow.server, mss: Int(flow.serverSyn.mss ?? 536))
        if case .v6(let p) = packet, flow.serverFlowLabel != Flow.flowLabelUnknown, p.ip.flowLabel != flow.serverFlowLabel {
            p.ip.setFlowLabel(flow.serverFlowLabel)
        }
        tcp.setSeq(seqOffset.apply(tcp.seq))
        var flags = tcp.flags
        flags.insert(.ack)
        tcp.setFlags(flags)
        tcp.setAck(preAck)
        tcp.setWindow(0)
        if tsOffset != 0 { shiftTimestamp(tcp, valueBy: tsOffset, echoBy: 0) }
    }
}
