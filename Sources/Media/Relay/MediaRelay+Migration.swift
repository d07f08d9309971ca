import Wire

/// Starting a media session's migration, and carrying out what `MediaMigration` decides.
extension MediaRelay {
    /// Asks to move session `sid` to the device at `target`, whose player then opens the same
    /// URL through the gateway within `deadline`. Returns why not, changing nothing, or nil.
    public mutating func migrate(_ sid: MediaSessionID, to target: IPAddress, deadline: MediaDuration,
                                 now: MediaTime) -> (refusal: String?, actions: [MediaRelayAction]) {
        guard var s = sessions[sid] else { return ("no media session \(sid)", []) }
        if let m = s.migration, !m.isFinished { return ("\(sid) is already migrating (\(m.phase.rawValue))", []) }
        guard s.tracker.state == .playing else { return ("\(sid) is \(s.tracker.state.rawValue), not playing", []) }
        guard s.tracker.description != nil else { return ("\(sid) has no cached description (DESCRIBE went elsewhere)", []) }
        guard let video = s.videoIndex, s.streams[video].serverRTP != nil else {
            return ("\(sid) has no H.264 or MPEG-4 Part 2 video stream over UDP: no GOP to switch at", [])
        }
        guard target != s.playerAddress else { return ("\(sid) already plays at \(target)", []) }
        var config = config.migration
        config.readyTimeout = deadline
        s.migration = MediaMigration(config: config, requestedAt: now)
        s.target = target
        s.newPlayer = nil
        sessions[sid] = s
        return (nil, [.event(.migrationPhase(sid, .requested))])
    }

    /// Feeds the session's migration (not an RTP packet: those go through `route`).
    mutating func migrationInput(_ sid: MediaSessionID, _ input: MediaMigrationInput, now: MediaTime) -> [MediaRelayAction] {
        guard var m = sessions[sid]?.migration else { return [] }
        let decided = m.handle(input, now: now)
        sessions[sid]?.migration = m
        return carryOut(sid, decided, now: now)
    }

    mutating func carryOut(_ sid: MediaSessionID, _ decided: [MediaMigrationAction], now: MediaTime) -> [MediaRelayAction] {
        var actions: [MediaRelayAction] = []
        for action in decided {
            switch action {
            case .route:
                break
            case .phaseChanged(let phase):
                actions.append(.event(.migrationPhase(sid, phase)))
            case .endOldPlayer:
                actions += switchPlayers(sid, now: now)
            case .endNewPlayer:
                guard var s = sessions[sid] else { continue }
                for i in s.streams.indices {
                    if let e = s.streams[i].newPlayerRTCP, playerRTCP[e]?.0 == sid { playerRTCP[e] = nil }
                    s.streams[i].newPlayerRTP = nil; s.streams[i].newPlayerRTCP = nil
                    s.streams[i].promised = nil; s.streams[i].newPlayerURL = nil
                }
                let n = s.newPlayer
                s.newPlayer = nil
                sessions[sid] = s
                if let n, connections.removeValue(forKey: n) != nil { actions.append(.closeDevice(n)) }
            case .finished(let report):
                remember(sid, report)
                sessions[sid]?.migration = nil
                sessions[sid]?.target = nil
                actions.append(.event(.migrationFinished(sid, report)))
                if sessions[sid]?.player == nil {
                    actions += endSession(sid, reason: "the player left and the migration \(report.phase.rawValue)", closeUpstream: true)
                }
            }
        }
        return actions
    }

    /// The switch: the new player is the session's player; the old one gets an RTCP BYE for
    /// each stream (RFC 3550 §6.6) and its control connection is closed.
    private mutating func switchPlayers(_ sid: MediaSessionID, now: MediaTime) -> [MediaRelayAction] {
        guard var s = sessions[sid], let target = s.target else { return [] }
        var actions: [MediaRelayAction] = []
        for i in s.streams.indices {
            var st = s.streams[i]
            guard let rtp = st.newPlayerRTP, let rtcp = st.newPlayerRTCP else { continue }
            let oldSSRC = st.continuity?.ssrc ?? st.ssrc ?? Self.fallbackSSRC
            actions.append(.sendToPlayer(rtcp: true, to: st.playerRTCP, RTCPBuilder.bye(sources: [oldSSRC], reason: "moved to another device")))
            if playerRTCP[st.playerRTCP]?.0 == sid { playerRTCP[st.playerRTCP] = nil }
            st.playerRTP = rtp; st.playerRTCP = rtcp
            playerRTCP[rtcp] = (sid, i)
            st.newPlayerRTP = nil; st.newPlayerRTCP = nil
            if i != s.videoIndex { st.awaitingContinuity = true }
            s.streams[i] = st
        }
        let old = s.player
        s.player = s.newPlayer
        s.newPlayer = nil
        s.playerAddress = target
        if let p = s.player { connections[p]?.role = .relaying(sid) }
        sessions[sid] = s
        if let old, connections.removeValue(forKey: old) != nil { actions.append(.closeDevice(old)) }
        return actions + migrationInput(sid, .oldPlayerEnded, now: now)
    }
}
