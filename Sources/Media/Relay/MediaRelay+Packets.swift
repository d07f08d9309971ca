import Wire

/// RTP and RTCP through the relay (RFC 3550): the server's packets to the current player (or,
/// from the switch on, the new one, rewritten); the player's RTCP to the server.
extension MediaRelay {
    mutating func serverDatagram(_ port: UInt16, from: IPEndpoint, _ bytes: [UInt8], now: MediaTime) -> [MediaRelayAction] {
        let rtpPort = port & ~1
        // Only the server's ports of the stream speak for it (its SETUP answer's server_port).
        guard let (sid, index) = pairOwners[rtpPort], let owner = sessions[sid]?.server.address, from.address == owner,
              let known = sessions[sid].map({ port == rtpPort ? $0.streams[index].serverRTP : $0.streams[index].serverRTCP }),
              known.map({ $0 == from }) ?? true else {
            counters.unknownSource += 1
            return []
        }
        if port != rtpPort {
            // RTCP from the server: sender reports go to the player, in its numbering.
            guard (try? RTCPCompound(parsing: bytes)) != nil, let stream = sessions[sid]?.streams[index] else { counters.badRTCP += 1; return [] }
            var packet = bytes
            if let c = stream.continuity { try? c.applyToSenderReports(in: &packet) }
            counters.rtcpRelayed += 1
            return [.sendToPlayer(rtcp: true, to: stream.playerRTCP, packet)]
        }
        guard let header = try? RTPHeader(parsing: bytes) else { counters.badRTP += 1; return [] }
        // The session is changed in place (a copy of it would copy its streams on every packet).
        let gopStart = Self.observe(&sessions[sid]!.streams[index], header, bytes)
        _ = sessions[sid]!.tracker.handle(.mediaActivity, now: now)
        let isVideo = index == sessions[sid]!.videoIndex
        var decided: [MediaMigrationAction] = []
        if isVideo, sessions[sid]!.migration != nil {
            decided = sessions[sid]!.migration!.handle(.rtp(MediaPacketInfo(sequenceNumber: header.sequenceNumber,
                                                                            timestamp: header.timestamp, isGOPStart: gopStart)), now: now)
        }
        var destination = sessions[sid]!.streams[index].playerRTP
        var rewrite = sessions[sid]!.streams[index].continuity
        if case .route(.newPlayer(let c))? = decided.first {
            destination = sessions[sid]!.streams[index].newPlayerRTP ?? destination
            rewrite = c
            sessions[sid]!.streams[index].continuity = c
        }
        var packet = bytes
        if let rewrite { try? rewrite.apply(to: &packet) }
        counters.rtpRelayed += 1
        let sent = MediaRelayAction.sendToPlayer(rtcp: false, to: destination, packet)
        return decided.count > 1 ? [sent] + carryOut(sid, Array(decided.dropFirst()), now: now) : [sent]
    }

    /// What a server packet changes in its stream: counts, the newest seq/timestamp, the GOP
    /// detector (whether this packet starts a GOP), a pending continuity after a switch.
    private static func observe(_ st: inout RelayedStream, _ header: RTPHeader, _ bytes: [UInt8]) -> Bool {
        if st.ssrc == nil { st.ssrc = header.ssrc }
        var gopStart = false
        if st.detector != nil {
            gopStart = bytes.withUnsafeBytes { buf in
                st.detector!.observe(header, payload: UnsafeRawBufferPointer(rebasing: buf[header.payloadRange]))
            }
        }
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
        sessions[sid] = s
        counters.rtcpRelayed += 1
        return actions + [.sendToServer(fromPort: st.serverPair &+ 1, to: server, bytes)]
    }
}
