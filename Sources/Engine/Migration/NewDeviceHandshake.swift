import Wire

/// The new device's connection to the proxy, which answers it as the server would (DESIGN §6
/// step 4): what its SYN offered and how its sequence space, clock and window scale map to
/// the server's.
struct NewDeviceHandshake: Sendable {
    let endpoint: IPEndpoint
    let isn: SeqNumber
    let syn: SynOptions
    /// TTL and DF of the new device's SYN.
    let ip: EndIPHeader
    var tsRecent: UInt32?
    var windowField: UInt16
    /// When the last SYN-ACK went out, and how many went again for want of the handshake's
    /// ACK (the new device may have lost the SYN-ACK's answer and then wait silently).
    var synAckSentAt: Instant?
    var synAckRetransmissions = 0
    /// Maps the new device's sequence space to the server's view (set at the SYN-ACK).
    var toServerOffset = SequenceOffset()
    /// Added to the new device's TSval toward the server (RFC 7323 §5.3, PAWS).
    var tsOffset: UInt32 = 0
    /// The window shift offered the new device for the server's windows (0 = none).
    var serverShift: UInt8 = 0
    /// The SYN-ACK offered window scaling (so the new device scales its windows).
    var scaling = false
    /// The new device's next sequence number (its own space): set when its handshake
    /// completes, tracked until the splice. Non-nil means "connected".
    var next: SeqNumber?
    var finSeq: SeqNumber?
    /// Last ack of the new device's data sent to it (to notice server progress).
    var lastAck: SeqNumber?

    init(_ packet: TCPIPPacket) {
        endpoint = packet.source
        isn = packet.tcp.seq
        syn = SynOptions(packet.tcp.options, flags: packet.tcp.flags)
        ip = EndIPHeader(packet)
        windowField = packet.tcp.window
        tsRecent = packet.tcp.options.timestamp?.value
    }

    var synAckSent: Bool { synAckSentAt != nil }
    var isConnected: Bool { next != nil }
    /// The shift the new device applies to its own windows: its SYN's, if the SYN-ACK offered scaling.
    var ownShift: UInt8 { scaling ? (syn.windowScale ?? 0) : 0 }
}

extension SpliceEngine {
    /// The SYN-ACK's sequence number: one before the cut toward the device, in the device's view.
    func synAckSeq(_ flow: Flow, _ cut: CutOffsets) -> SeqNumber {
        flow.toDevice.seqOffset.apply(cut.toDevice) - 1
    }

    /// Answers the new device's SYN as the server would (options compatible with the original
    /// connection: RFC 7323 §2.2 window scale and §3.2 timestamps only when both the original
    /// connection and the new device have them; SACK likewise, RFC 2018 §2).
    func sendSynAck(slot: Int, mid: MigrationID, now: Instant, generated: PacketBatch) {
        guard let f = table[slot: slot], var m = migrations[mid], let cut = m.cutOffsets,
              var h = m.newDevice, let freeze = m.freeze else { return }
        let syn = h.syn
        let originalScaling = f.deviceSyn.windowScale != nil && f.serverSyn.windowScale != nil
        let scaling = originalScaling && syn.windowScale != nil
        h.serverShift = scaling ? (f.serverSyn.windowScale ?? 0) : 0
        h.scaling = scaling
        let timestamps = f.deviceSyn.timestamps && f.serverSyn.timestamps && syn.timestamps
        var mss = clampedTowardDevice(f.mssOfferedToNewDevice, family: h.endpoint.family)
        // The server's MSS is for its family's header: a new device with a longer one (IPv6
        // for an IPv4 server) gets that much less, so its segments fit once translated back.
        let longer = h.endpoint.family.headerLength - f.server.family.headerLength
        if longer > 0 { mss = max(mss, 88) - UInt16(longer) }
        // Without timestamps of its own, its segments get the option on the way to the server
        // (`addTimestampTowardServer`): leave room for it.
        if f.deviceSyn.timestamps && f.serverSyn.timestamps && !syn.timestamps {
            mss = max(mss, 88) - UInt16(TCPOption.alignedTimestampLength)
        }
        var options: [TCPOption] = [.maximumSegmentSize(mss)]
        if f.deviceSyn.sackPermitted && f.serverSyn.sackPermitted && syn.sackPermitted { options.append(.sackPermitted) }
        if timestamps {
            options.append(.timestamp(value: f.toDevice.lastTSval ?? 1, echoReply: h.tsRecent ?? 0))
        }
        if scaling, let shift = f.serverSyn.windowScale { options.append(.noOperation); options.append(.windowScale(shift)) }
        // Sequence spaces: the new device's data continues the old device's stream at the cut.
        // Fixed once it is connected (a late duplicate SYN must not move the offsets under the
        // segments already rewritten with them).
        if !h.isConnected {
            h.toServerOffset = SequenceOffset(from: h.isn + 1, to: f.toServer.seqOffset.apply(cut.toServer))
            if timestamps, let last = freeze.lastTSvalToServer, let first = h.tsRecent {
                h.tsOffset = (last &+ 1) &- first
            }
        }
        h.synAckSentAt = now
        let handshake = h
        m.updateNewDevice { $0 = handshake }
        migrations[mid] = m
        // A SYN-ACK's window is never scaled (RFC 7323 §2.2).
        let window = WindowScale(from: f.serverWindowShift, to: 0).translate(f.toDevice.lastWindow)
        // ECN (RFC 3168 §6.1.1): an ECN-setup SYN-ACK when the connection with the server uses
        // ECN and the new device asked for it.
        let flags: TCPFlags = f.deviceSyn.ecn && f.serverSyn.ecn && syn.ecn ? [.syn, .ack, .ece] : [.syn, .ack]
        emit(TCPPacketSpec(source: original(f, for: h.endpoint.family) ?? f.original, destination: h.endpoint, seq: synAckSeq(f, cut), ack: h.isn + 1,
                           flags: flags, window: window, options: options, tos: f.dscpToDevice).imitating(f.serverIP),
             generated: generated)
    }

    /// How long a SYN-ACK waits for the handshake's ACK: 1 s, doubled on each retransmission,
    /// at most 8 s (RFC 6298 §2.1, §5.5).
    static func synAckTimeout(after retransmissions: Int) -> UInt64 {
        1_000_000_000 << UInt64(min(retransmissions, 3))
    }

    /// The handshake's ACK came: the cache goes to the new device (`resuming`).
    func startSenderTowardNewDevice(slot: Int, mid: MigrationID, now: Instant) {
        guard let f = table[slot: slot], var m = migrations[mid], case .cut(var freeze, let cut) = m.phase,
              var h = freeze.newDevice, let copy = f.inFlight else { return }
        h.next = h.isn + 1
        freeze.newDevice = h
        let timestamps = f.deviceSyn.timestamps && f.serverSyn.timestamps && h.syn.timestamps
        // The MSS counts no options: the timestamp option each segment carries comes off it
        // (RFC 9293 §3.7.1, RFC 6691), or full segments exceed the device's MTU.
        let mss = min(Int(h.syn.mss ?? 536), Int(f.serverSyn.mss ?? 1460), 1460)
            - (timestamps ? TCPOption.alignedTimestampLength : 0)
        let window = WindowScale.bytes(h.windowField, shift: h.ownShift) // the handshake ACK's, scaled
        let sender = EmulatedSender(from: cut.toDevice, to: copy.end, fin: freeze.serverFinSeq == copy.end,
                                    mss: mss, peerWindow: window,
                                    sack: f.deviceSyn.sackPermitted && f.serverSyn.sackPermitted && h.syn.sackPermitted)
        freeze.bytesCached = UInt64(cut.toDevice.distance(to: copy.end))
        m.phase = .resuming(freeze, cut, sender: sender)
        m.enter(.newDeviceConnected, at: now)
        migrations[mid] = m
        journalPhases(m)
    }
}
