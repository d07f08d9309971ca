import Wire

/// RTSP control through the relay (RFC 2326 §10): requests of a relayed player go upstream
/// with their transports rewritten; answers come back rewritten the other way.
extension MediaRelay {
    mutating func deviceBytes(_ id: MediaConnectionID, _ bytes: [UInt8], now: MediaTime) -> [MediaRelayAction] {
        guard var c = connections[id] else { return [] }
        c.parser.append(bytes)
        connections[id] = c
        var actions: [MediaRelayAction] = []
        while true {
            let item: RTSPStreamItem?
            do throws(RTSPParseError) {
                item = try connections[id]?.parser.next()
            } catch {
                counters.badRTSP += 1
                actions.append(.event(.refused("RTSP from \(c.device): \(error); connection closed")))
                actions.append(.sendToDevice(id, RTSPMessage(.response(version: "RTSP/1.0", status: 400, reason: "Bad Request")).serialized()))
                return actions + closeDeviceConnection(id, now: now)
            }
            guard let item, let role = connections[id]?.role else { return actions }
            switch (role, item) {
            case (.relaying(let sid), .message(let request)):
                actions += relayRequest(sid, from: id, request, now: now)
            case (.relaying(let sid), .interleaved(let channel, let payload)):
                actions += sendUpstream(sid, Self.interleavedFrame(channel, payload))
            case (.adopting(let sid), .message(let request)):
                actions += adoptedRequest(sid, from: id, request, now: now)
            case (.retired, .message(let request)):
                actions.append(.sendToDevice(id, retiredAnswer(request).serialized()))
            case (_, .interleaved):
                counters.badRTSP += 1
            }
        }
    }

    /// A device connection ends on the relay's side: as if the device had closed it.
    mutating func closeDeviceConnection(_ id: MediaConnectionID, now: MediaTime) -> [MediaRelayAction] {
        [.closeDevice(id)] + deviceClosed(id, now: now)
    }

    static func interleavedFrame(_ channel: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [0x24, channel, UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count & 0xFF)] + payload
    }

    /// An old player after the switch: its session lives on elsewhere.
    func retiredAnswer(_ request: RTSPMessage) -> RTSPMessage {
        request.method == "TEARDOWN" ? .answer(to: request) : .answer(to: request, status: 454, reason: "Session Not Found")
    }

    mutating func sendUpstream(_ sid: MediaSessionID, _ bytes: [UInt8]) -> [MediaRelayAction] {
        guard var s = sessions[sid] else { return [] }
        if s.upstreamConnected { return [.sendUpstream(s.upstream, bytes)] }
        var actions: [MediaRelayAction] = []
        if !s.upstreamRequested {
            s.upstreamRequested = true
            counters.sessionsStarted += 1
            actions.append(.connectUpstream(s.upstream, to: s.server))
        }
        s.upstreamQueue += bytes
        sessions[sid] = s
        guard s.upstreamQueue.count <= config.maxPendingBytes else {
            return endSession(sid, reason: "more than \(config.maxPendingBytes) bytes waited for the server", closeUpstream: true)
        }
        return actions
    }

    /// A relayed player's request: transports rewritten, CSeq renumbered for a player that
    /// took the session over, then upstream.
    mutating func relayRequest(_ sid: MediaSessionID, from id: MediaConnectionID, _ original: RTSPMessage, now: MediaTime) -> [MediaRelayAction] {
        guard var s = sessions[sid], let c = connections[id] else { return [] }
        if original.method == "TEARDOWN", id == s.player, let m = s.migration, !m.isFinished {
            // The old player leaves while its session moves: the session is the new player's to
            // end. Answered here; the server keeps the session (it ends if the move rolls back).
            return [.sendToDevice(id, RTSPMessage.answer(to: original).serialized())] + closeDeviceConnection(id, now: now)
        }
        var request = original
        if let published = s.published, let uri = request.uri {
            request.setRequestURI(RTSPURL.rebased(uri, from: published, to: s.server))
        }
        if id != s.upstream {
            // A player that took the session over: the server knows the first player's CSeqs.
            let theirs = request.headers["CSeq"] ?? ""
            let ours = s.nextUpstreamCSeq
            s.nextUpstreamCSeq += 1
            s.renumbered[ours] = (id, theirs)
            if s.renumbered.count > RTSPSessionTracker.maxRequestsInFlight, let oldest = s.renumbered.keys.min() {
                s.renumbered[oldest] = nil
            }
            request.headers["CSeq"] = String(ours)
        } else if let cseq = request.cseq {
            s.nextUpstreamCSeq = max(s.nextUpstreamCSeq, cseq + 1)
        }
        if request.method == "SETUP" {
            guard let transports = try? request.transports(),
                  let offered = transports.first(where: { $0.isRTPAVP && $0.isUDP && !$0.isMulticast && $0.clientPort != nil }) else {
                // Interleaved (or unreadable) transports go to the server as they are.
                sessions[sid] = s
                return track(sid, .request(request), now: now) + sendUpstream(sid, request.serialized())
            }
            guard let pair = freePairs.popLast() else {
                sessions[sid] = s
                return [.event(.refused("SETUP from \(c.device): no free server-side port pair")),
                        .sendToDevice(id, RTSPMessage.answer(to: original, status: 453, reason: "Not Enough Bandwidth").serialized())]
            }
            let ports = offered.clientPort!
            let rtp = IPEndpoint(c.device.address, ports.first)
            let rtcp = IPEndpoint(c.device.address, ports.last ?? ports.first &+ 1)
            var chosen = offered
            chosen.clientPort = RTSPPortRange(pair, pair &+ 1)
            chosen.destination = nil
            request.headers["Transport"] = chosen.description
            if let cseq = request.cseq { s.pendingSetups[cseq] = (pair, rtp, rtcp) }
        }
        if request.method == "TEARDOWN" { s.endingSince = now }
        sessions[sid] = s
        return track(sid, .request(request), now: now) + sendUpstream(sid, request.serialized())
    }

    /// Feeds the session's tracker (events other than the end are the answer path's business).
    mutating func track(_ sid: MediaSessionID, _ input: RTSPSessionTracker.Input, now: MediaTime) -> [MediaRelayAction] {
        _ = sessions[sid]?.tracker.handle(input, now: now)
        return []
    }

    mutating func upstreamBytes(_ id: MediaConnectionID, _ bytes: [UInt8], now: MediaTime) -> [MediaRelayAction] {
        guard let sid = upstreams[id], var s = sessions[sid] else { return [] }
        s.upstreamParser.append(bytes)
        sessions[sid] = s
        var actions: [MediaRelayAction] = []
        while true {
            let item: RTSPStreamItem?
            do throws(RTSPParseError) {
                item = try sessions[sid]?.upstreamParser.next()
            } catch {
                counters.badRTSP += 1
                return actions + endSession(sid, reason: "the server's RTSP could not be read: \(error)", closeUpstream: true)
            }
            guard let item, let current = sessions[sid] else { return actions }
            switch item {
            case .interleaved(let channel, let payload):
                if let p = current.player { actions.append(.sendToDevice(p, Self.interleavedFrame(channel, payload))) }
            case .message(let message) where message.isRequest:
                // A server's request (GET_PARAMETER, ANNOUNCE...) goes to the player as it is.
                if let p = current.player { actions.append(.sendToDevice(p, message.serialized())) }
            case .message(let answer):
                actions += relayAnswer(sid, answer, now: now)
            }
        }
    }

    /// A server's answer: the SETUP's transport rewritten for the player, to whoever asked.
    mutating func relayAnswer(_ sid: MediaSessionID, _ original: RTSPMessage, now: MediaTime) -> [MediaRelayAction] {
        guard var s = sessions[sid] else { return [] }
        var answer = original
        var actions: [MediaRelayAction] = []
        let events = s.tracker.handle(.answer(original), now: now)
        var to = s.player
        if s.published != nil {
            for name in ["Content-Base", "Content-Location"] {
                if let url = answer.headers[name] { answer.headers[name] = s.playerURL(url) }
            }
            if let infos = try? answer.rtpInfo() { answer.setRTPInfo(infos.map { RTSPRTPInfo(url: s.playerURL($0.url), seq: $0.seq, rtptime: $0.rtptime) }) }
        }
        if let cseq = answer.cseq, let mapped = s.renumbered.removeValue(forKey: cseq) {
            answer.headers["CSeq"] = mapped.cseq
            to = mapped.connection
        }
        if let cseq = original.cseq, let pending = s.pendingSetups.removeValue(forKey: cseq) {
            let ok = (original.status ?? 0) / 100 == 2
            if ok, let transport = try? original.transports()?.first {
                var stream = RelayedStream(controlURL: s.tracker.streams.last?.controlURL ?? "", serverPair: pending.pair,
                                           playerRTP: pending.playerRTP, playerRTCP: pending.playerRTCP)
                if let ports = transport.serverPort {
                    stream.serverRTP = IPEndpoint(s.server.address, ports.first)
                    stream.serverRTCP = IPEndpoint(s.server.address, ports.last ?? ports.first &+ 1)
                }
                stream.ssrc = transport.ssrc
                let media = s.tracker.description?.media.first(where: { m in
                    m.control.map { stream.controlURL.hasSuffix($0) } ?? false }) ?? (s.streams.isEmpty ? s.tracker.description?.video : nil)
                stream.reception = ReceptionStats(clockRate: media?.clockRate)
                if let codec = media?.videoCodec, s.videoIndex == nil {
                    stream.detector = GOPBoundaryDetector(codec: codec)
                }
                pairOwners[pending.pair] = (sid, s.streams.count)
                playerRTCP[pending.playerRTCP] = (sid, s.streams.count)
                s.streams.append(stream)
                _ = try? answer.rewriteTransports { t in
                    t.clientPort = RTSPPortRange(pending.playerRTP.port, pending.playerRTCP.port)
                    t.serverPort = RTSPPortRange(config.devicePortRTP, config.devicePortRTP &+ 1)
                }
            } else {
                freePairs.append(pending.pair)
            }
        }
        sessions[sid] = s
        for event in events {
            switch event {
            case .playing where !s.announced:
                sessions[sid]?.announced = true
                actions.append(.event(.sessionStarted(sid, url: s.playerURL(s.tracker.url ?? ""), device: IPEndpoint(s.playerAddress, 0))))
            default:
                break
            }
        }
        if let to, connections[to] != nil { actions.append(.sendToDevice(to, answer.serialized())) }
        if s.endingSince != nil, s.tracker.state == .ended {
            actions += endSession(sid, reason: "TEARDOWN", closeUpstream: true)
        }
        return actions
    }
}
