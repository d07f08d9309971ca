import Wire

/// RTP and RTCP through the relay (RFC 3550): the server's packets to the current player (or,
/// from the switch on, the new one, rewritten); the player's RTCP to the server.
extension MediaRelay {
    mutating func serverDatagram(_ port: UInt16, from: IPEndpoint, _ bytes: [UInt8], now: MediaTime) -> [MediaRelayAction] {
        let rtpPort = port & ~1
        guard let (sid, index) = pairOwners[rtpPort], var s = sessions[sid], index < s.streams.count,
              from.address == s.server.address else {
            counters.unknownSource += 1
            return []
        }
        if port != rtpPort {
            // RTCP from the server: sender reports go to the player, in its numbering.
            guard (try? RTCPCompound(parsing: bytes)) != nil else { counters.badRTCP += 1; return [] }
            var packet = bytes
            if let c = s.streams[index].continuity { try? c.applyToSenderReports(in: &packet) }
            counters.rtcpRelayed += 1
            return [.sendToPlayer(rtcp: true, to: s.streams[index].playerRTCP, packet)]
        }
        guard let header = try? RTPHeader(parsing: bytes) else { counters.badRTP += 1; return [] }
        var st = s.streams[index]
        if st.ssrc == nil { st.ssrc = header.ssrc }
        let gopStart = st.detector.map { _ in
            bytes.withUnsafeBytes { buf in st.detector!.observe(header, payload: UnsafeRawBufferPointer(rebasing: buf[header.payloadRange])) }
        } ?? false
        st.lastSequence = header.sequenceNumber
        st.lastTimestamp = header.timestamp
        st.packets += 1
        st.bytes += UInt64(bytes.count)
        if st.awaitingContinuity, let promised = st.promised {
            st.continuity = RTPContinuity(switchSequence: header.sequenceNumber, switchTimestamp: header.timestamp, to: promised)
            st.awaitingContinuity = false
        }
        s.streams[index] = st
        _ = s.tracker.handle(.mediaActivity, now: now)
        sessions[sid] = s

        var destination = st.playerRTP
        var rewrite = st.continuity
        var follow: [MediaMigrationAction] = []
        if index == s.videoIndex, var m = s.migration {
            let decided = m.handle(.rtp(MediaPacketInfo(sequenceNumber: header.sequenceNumber, timestamp: header.timestamp,
                                                         isGOPStart: gopStart)), now: now)
            sessions[sid]?.migration = m
            if case .route(.newPlayer(let c)) = decided.first {
                destination = st.newPlayerRTP ?? st.playerRTP
                rewrite = c
                sessions[sid]?.streams[index].continuity = c
            }
            follow = Array(decided.dropFirst())
        }
        var packet = bytes
        if let rewrite { try? rewrite.apply(to: &packet) }
        counters.rtpRelayed += 1
        return [.sendToPlayer(rtcp: false, to: destination, packet)] + carryOut(sid, follow, now: now)
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
