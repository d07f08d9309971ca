import Wire

/// The segments the proxy sends in its own name while it holds a migrating flow: the
/// freeze's ACKs to the server (TSMP draft §4.3.1), window 0 to the old device, and the
/// emulated sender's data and ACKs toward whichever device it serves.
extension SpliceEngine {
    /// What the proxy acknowledges to the server: everything it holds, FIN included (the
    /// FIN only while the migration holds the flow).
    func preAckPoint(_ flow: Flow, _ freeze: Freeze?) -> SeqNumber {
        let end = flow.inFlight?.end ?? freeze?.forwardedToDeviceEnd ?? SeqNumber(0)
        return freeze?.serverFinSeq == end ? end + 1 : end
    }

    /// An ACK to the server: next expected, window 0 (TSMP draft §4.3.1). `duplicate`: the
    /// bytes of the segment it answers that the proxy already held, reported as a D-SACK
    /// block (RFC 2883 §4) when the connection negotiated SACK. Without it, a server whose
    /// tail-loss probe (RFC 8985 §7) crossed the freeze takes the probe for a repaired loss
    /// and reduces its window (Linux: TcpExtTCPLossProbeRecovery, ssthresh set).
    ///
    /// Segments held past a hole (`OutOfOrderHold`) are reported in the blocks after it, the one
    /// holding `latest` (the segment just received) first (RFC 2018 §4).
    func sendFreezeAckToServer(slot: Int, mid: MigrationID, duplicate: SackBlock? = nil, latest: SeqNumber? = nil,
                               generated: PacketBatch) {
        guard let f = table[slot: slot], let freeze = migrations[mid]?.freeze else { return }
        let seq: SeqNumber
        if let h = freeze.newDevice, let next = h.next {
            seq = h.toServerOffset.apply(next)
        } else {
            seq = f.toServer.seqOffset.apply(f.toServer.nextSeq ?? freeze.forwardedToServerEnd)
        }
        var options: [TCPOption] = []
        if f.deviceSyn.timestamps && f.serverSyn.timestamps {
            options = TCPOption.alignedTimestamp(value: freeze.lastTSvalToServer ?? 1, echoReply: f.toDevice.lastTSval ?? 0)
        }
        if f.deviceSyn.sackPermitted && f.serverSyn.sackPermitted {
            // 40 option bytes: with timestamps (12) room for 3 blocks, without for 4.
            let room = options.isEmpty ? 4 : 3
            var blocks = duplicate.map { [$0] } ?? []
            blocks += freeze.held.sackBlocks(latest: latest, limit: room - blocks.count)
            if !blocks.isEmpty { options += [.noOperation, .noOperation, .sack(blocks)] }
        }
        emit(TCPPacketSpec(source: natEndpoint(f), destination: f.server, seq: seq,
                           ack: preAckPoint(f, freeze), flags: .ack, window: 0, options: options, tos: f.dscpToServer)
                .imitating(f.deviceIP),
             generated: generated)
    }

    /// The old device's D-SACK (RFC 2883 §4), received once the flow is paused, passed on to
    /// the server in a freeze ACK. A tail-loss probe (RFC 8985 §7) the proxy forwarded to the
    /// old device just before the pause is reported as a duplicate by that device, but its ACKs
    /// no longer reach the server: without the report, Linux takes the probe for a repaired
    /// loss at the first ACK past it (TcpExtTCPLossProbeRecovery) and lowers ssthresh.
    func relayDuplicateReport(fromOldDevice tcp: TCPSegment, slot: Int, mid: MigrationID, generated: PacketBatch) {
        guard tcp.flags.contains(.ack), let m = migrations[mid], let f = table[slot: slot] else { return }
        switch m.phase {
        case .paused, .cut: break
        case .awaitingState, .resuming, .rollingBack: return
        }
        guard let d = tcp.options.duplicateSack(ack: tcp.ack) else { return }
        let toServer = f.toDevice.seqOffset
        sendFreezeAckToServer(slot: slot, mid: mid, duplicate: SackBlock(toServer.reverse(d.left), toServer.reverse(d.right)),
                              generated: generated)
    }

    /// Window 0 to the old device, acknowledging what the server has of its data (the
    /// server's window instead once the cache goes back to it).
    func sendAckToOldDevice(slot: Int, mid: MigrationID, generated: PacketBatch) {
        guard let f = table[slot: slot], let m = migrations[mid], let freeze = m.freeze,
              let ack = f.toDevice.highestAck else { return }
        let seq: SeqNumber
        let window: UInt16
        switch m.phase {
        case .rollingBack(_, _, let sender):
            seq = sender.next
            window = WindowScale(from: f.serverWindowShift, to: f.currentDeviceViewOfServerShift).translate(f.toDevice.lastWindow)
        case .resuming:
            return
        case .awaitingState, .paused, .cut:
            seq = freeze.forwardedToDeviceEnd
            window = 0
        }
        var options: [TCPOption] = []
        if f.currentDeviceTimestamps {
            options = TCPOption.alignedTimestamp(value: f.toDevice.lastTSval ?? 1, echoReply: f.toServer.lastTSval ?? 0)
        }
        emit(TCPPacketSpec(source: original(f, for: freeze.oldDevice.family) ?? f.original, destination: freeze.oldDevice,
                           seq: f.toDevice.seqOffset.apply(seq), ack: ack,
                           flags: .ack, window: window, options: options, tos: f.dscpToDevice).imitating(f.serverIP),
             generated: generated)
    }

    /// The server's ack of the device side's stream, in the new device's space.
    func ackTowardNewDevice(_ freeze: Freeze, _ cut: CutOffsets, _ h: NewDeviceHandshake) -> SeqNumber {
        h.toServerOffset.reverse(SeqNumber.max(freeze.serverAckServerView, cut.toServerView))
    }

    /// Sends what the emulated sender allows now. Returns whether anything was sent.
    @discardableResult
    func transmitNew(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) -> Bool {
        guard var m = migrations[mid], var sender = m.sender else { return false }
        let room = (generated.capacity - generated.count)
        guard room > 0 else { return false }
        let segments = sender.segmentsToSend(now: now, limit: room)
        m.setSender(sender)
        migrations[mid] = m
        transmit(segments, slot: slot, mid: mid, now: now, generated: generated)
        return !segments.isEmpty
    }

    /// Builds the emulated sender's segments from the cache, toward whichever device it serves.
    func transmit(_ segments: [EmulatedSender.Segment], slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        guard !segments.isEmpty, let f = table[slot: slot], let copy = f.inFlight, var m = migrations[mid],
              let (device, ack, ts, window) = towardDevice(f, m) else { return }
        let series: MigrationTimeline.Series = m.isRollingBack ? .proxyToOldDevice : .proxyToNewDevice
        for s in segments {
            guard let payload = copy.bytes(from: s.seq, length: s.length) else { continue }
            noteTimeline(mid, series, seq: s.seq, length: s.length, slot: slot, now: now)
            var flags: TCPFlags = [.ack]
            if s.length > 0 { flags.insert(.psh) }
            if s.fin { flags.insert(.fin) }
            let spec = TCPPacketSpec(source: original(f, for: device.family) ?? f.original, destination: device, seq: f.toDevice.seqOffset.apply(s.seq), ack: ack,
                                     flags: flags, window: window,
                                     options: ts.map { TCPOption.alignedTimestamp(value: $0.0, echoReply: $0.1) } ?? [],
                                     tos: f.dscpToDevice).imitating(f.serverIP)
            emit(spec, payload: payload, generated: generated)
        }
        let toNewDevice = !m.isRollingBack
        m.updateNewDevice { $0.lastAck = toNewDevice ? ack : nil }
        migrations[mid] = m
    }

    /// An ACK (no data) toward the new device: the server acknowledged more of its data.
    func sendPureAck(slot: Int, mid: MigrationID, generated: PacketBatch) {
        guard let f = table[slot: slot], var m = migrations[mid], let sender = m.sender,
              let (device, ack, ts, window) = towardDevice(f, m) else { return }
        emit(TCPPacketSpec(source: original(f, for: device.family) ?? f.original, destination: device,
                           seq: f.toDevice.seqOffset.apply(sender.next), ack: ack,
                           flags: .ack, window: window,
                           options: ts.map { TCPOption.alignedTimestamp(value: $0.0, echoReply: $0.1) } ?? [],
                           tos: f.dscpToDevice).imitating(f.serverIP),
             generated: generated)
        m.updateNewDevice { $0.lastAck = ack }
        migrations[mid] = m
    }

    /// Addressing of segments the emulated sender makes: destination, ack (the server's ack of
    /// that device's data, in its space), timestamps (server clock, device's recent), window.
    private func towardDevice(_ f: Flow, _ m: Migration) -> (IPEndpoint, SeqNumber, (UInt32, UInt32)?, UInt16)? {
        switch m.phase {
        case .rollingBack(let freeze, _, _):
            let ack = f.toDevice.highestAck ?? freeze.forwardedToServerEnd
            let ts: (UInt32, UInt32)? = f.currentDeviceTimestamps ? (f.toDevice.lastTSval ?? 1, f.toServer.lastTSval ?? 0) : nil
            return (freeze.oldDevice, ack, ts,
                    WindowScale(from: f.serverWindowShift, to: f.currentDeviceViewOfServerShift).translate(f.toDevice.lastWindow))
        case .resuming(let freeze, let cut, _):
            guard let h = freeze.newDevice else { return nil }
            let ts: (UInt32, UInt32)? = (f.deviceSyn.timestamps && f.serverSyn.timestamps && h.syn.timestamps)
                ? (f.toDevice.lastTSval ?? 1, h.tsRecent ?? 0) : nil
            return (h.endpoint, ackTowardNewDevice(freeze, cut, h), ts,
                    WindowScale(from: f.serverWindowShift, to: h.serverShift).translate(f.toDevice.lastWindow))
        case .awaitingState, .paused, .cut:
            return nil
        }
    }
}

/// The device holding a flow now, which after an earlier migration is not the one whose SYN
/// fixed the flow's options: what a rollback to it must use.
extension Flow {
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
