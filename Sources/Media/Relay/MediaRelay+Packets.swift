import Wire

/// RTP and RTCP through the relay (RFC 3550): the server's packets to the current player (or,
/// from the switch on, the new one, rewritten); the player's RTCP to the server.
extension MediaRelay {
    mutating func serverDatagram(_ port: UInt16, from: IPEndpoint, _ bytes: [UInt8], now: MediaTime) -> [MediaRelayAction] {
        let rtpPort = port & ~1
        // One lookup; the session is then read and changed in place (`values[slot]`): a copy of
        // it would copy its streams and tracker on every packet.
        guard let (sid, index) = pairOwners[rtpPort], let slot = sessions.index(forKey: sid),
              Self.fromServer(sessions.values[slot], index, port: port, rtpPort: rtpPort, from) else {
            counters.unknownSource += 1
            return []
        }
        if port != rtpPort {
            // RTCP from the server: sender reports go to the player, in its numbering.
            guard let compound = try? RTCPCompound(parsing: bytes) else { counters.badRTCP += 1; return [] }
            for case .senderReport(let sr) in compound.packets {
                sessions.values[slot].streams[index].reception.senderReport(ntp: sr.ntpTimestamp, at: now)
            }
            var packet = bytes
            if let c = sessions.values[slot].streams[index].continuity { try? c.applyToSenderReports(in: &packet) }
            counters.rtcpRelayed += 1
            return [.sendToPlayer(rtcp: true, to: sessions.values[slot].streams[index].playerRTCP, packet)]
        }
        guard let header = try? RTPHeader(parsing: bytes) else { counters.badRTP += 1; return [] }
        let (destination, rewrite, decided) = Self.route(&sessions.values[slot], index, header, bytes, now: now)
        var packet = bytes
        if let rewrite { try? rewrite.apply(to: &packet) }
        counters.rtpRelayed += 1
        let sent = MediaRelayAction.sendToPlayer(rtcp: false, to: destination, packet)
        return decided.count > 1 ? [sent] + carryOut(sid, Array(decided.dropFirst()), now: now) : [sent]
    }

    /// Only the server's ports of the stream speak for it (its SETUP answer's server_port).
    private static func fromServer(_ s: RelayedSession, _ index: Int, port: UInt16, rtpPort: UInt16, _ from: IPEndpoint) -> Bool {
        guard index < s.streams.count, from.address == s.server.address else { return false }
        let known = port == rtpPort ? s.streams[index].serverRTP : s.streams[index].serverRTCP
        return known.map { $0 == from } ?? true
    }

    /// Where a server RTP packet goes and with which rewrite, after the stream took note of it
    /// and (for the video stream) the migration decided; the migration's other actions follow.
    private static func route(_ s: inout RelayedSession, _ index: Int, _ header: RTPHeader, _ bytes: [UInt8],
                              now: MediaTime) -> (IPEndpoint, RTPContinuity?, [MediaMigrationAction]) {
        let gopStart = observe(&s.streams[index], header, bytes, now: now)
        var decided: [MediaMigrationAction] = []
        if s.migration != nil, index == s.videoIndex {
            decided = s.migration!.handle(.rtp(MediaPacketInfo(sequenceNumber: header.sequenceNumber, timestamp: header.timestamp,
                                                               isGOPStart: gopStart)), now: now)
        }
        if case .route(.newPlayer(let c))? = decided.first {
            s.streams[index].continuity = c
            return (s.streams[index].newPlayerRTP ?? s.streams[index].playerRTP, c, decided)
        }
        return (s.streams[index].playerRTP, s.streams[index].continuity, decided)
    }

    /// What a server packet changes in its stream: counts, the newest seq/timestamp, the GOP
    /// detector (whether this packet starts a GOP), a pending continuity after a switch.
    private static func observe(_ st: inout RelayedStream, _ header: RTPHeader, _ bytes: [UInt8], now: MediaTime) -> Bool {
        if st.ssrc == nil { st.ssrc = header.ssrc }
        var gopStart = false
        if st.detector != nil {
            gopStart = bytes.withUnsafeBytes { buf in
                st.detector!.observe(header, payload: UnsafeRawBufferPointer(rebasing: buf[header.payloadRange]))
            }
        }
        st.reception.record(header.sequenceNumber, timestamp: header.timestamp, arrival: now)
        st.lastSequence = header.sequenceNumber
        st.lastTimestamp = header.timestamp
        st.packets += 1
        st.bytes += UInt64(bytes.count)
        if st.awaitingContinuity, let promised = st.promised {
            st.continuity = RTPContinuity(switchSequence: header.sequenceNumber, switchTimestamp: header.timestamp, to: promised)
            st.awaitingContinuity = false
        }
        return gopStart
    }

    mutating func deviceDatagram(rtcp: Bool, from: IPEndpoint, _ bytes: [UInt8], now: MediaTime) -> [MediaRelayAction] {
        guard rtcp else {
            // A player's first packets to the RTP port open its NAT (and the gateway's
            // conntrack entry that makes RTP to it come from the server's address): nothing to relay.
            return []
        }
        guard let (sid, index) = playerRTCP[from], var s = sessions[sid], index < s.streams.count else {
            counters.unknownSource += 1
            return []
        }
        guard let compound = try? RTCPCompound(parsing: bytes) else { counters.badRTCP += 1; return [] }
        let st = s.streams[index]
        // Only the current player speaks for the session (the new one's reports before the switch
        // are about a stream it has not received yet).
        guard st.playerRTCP == from, let server = st.serverRTCP else { return [] }
        _ = s.tracker.handle(.mediaActivity, now: now)
        var actions: [MediaRelayAction] = []
        if index == s.videoIndex, let block = compound.reportBlocks.first {
            for event in s.loss.handle(report: block, now: now) { actions += lossEvent(&s, event) }
        }
        s.streams[index].lastRTCPToServer = now
        sessions[sid] = s
        counters.rtcpRelayed += 1
        var packet = bytes
        if let c = st.continuity { try? c.applyInverseToReportBlocks(in: &packet, serverSSRC: st.ssrc ?? c.ssrc) }
        return actions + [.sendToServer(fromPort: st.serverPair &+ 1, to: server, packet)]
    }
}
