import Wire

/// The new player of a migration (SMP draft §5.3): the relay answers its OPTIONS, DESCRIBE
/// (from the cached description), SETUP and PLAY itself (RFC 2326 §10.1-§10.5), so the server
/// keeps its one session; the promised SSRC, seq and rtptime are what the continuity rewrite
/// honours after the switch.
extension MediaRelay {
    static let publicMethods = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
    /// The SSRC promised when the server's is not known yet ("tsmp").
    static let fallbackSSRC: UInt32 = 0x7473_6D70

    mutating func adoptedRequest(_ sid: MediaSessionID, from id: MediaConnectionID, _ request: RTSPMessage, now: MediaTime) -> [MediaRelayAction] {
        guard let s = sessions[sid], let c = connections[id] else { return [] }
        if let uri = request.uri, uri != "*", !Self.sameResource(uri, as: s) {
            // Another stream: this connection is a player of its own, not the migration's.
            sessions[sid]?.newPlayer = nil
            connections[id]?.role = .retired
            let started = startRelaying(id, now: now)
            guard case .relaying(let own) = connections[id]?.role else { return started }
            return started + relayRequest(own, from: id, request, now: now)
        }
        func reply(_ m: RTSPMessage) -> MediaRelayAction { .sendToDevice(id, m.serialized()) }
        switch request.method ?? "" {
        case "OPTIONS":
            return [reply(.answer(to: request, headers: [("Public", Self.publicMethods)]))]
        case "DESCRIBE":
            guard let description = s.tracker.description else {
                return [reply(.answer(to: request, status: 404, reason: "Not Found"))]
            }
            return [reply(.describeAnswer(to: request, description: description,
                                          contentBase: s.playerURL(s.tracker.contentBase ?? s.tracker.url ?? "")))]
        case "SETUP":
            return adoptSetup(sid, id, c, request, now: now)
        case "PLAY":
            return adoptPlay(sid, id, request, now: now)
        case "TEARDOWN":
            return [reply(.answer(to: request))] + closeDeviceConnection(id, now: now)
        case "GET_PARAMETER", "SET_PARAMETER":
            return [reply(.answer(to: request))]
        default:
            return [reply(.answer(to: request, status: 455, reason: "Method Not Valid in This State"))]
        }
    }

    /// The request names the session's presentation or one of its streams (paths compared,
    /// hosts not: the new player may name the server as the old one did or by another name).
    static func sameResource(_ uri: String, as s: RelayedSession) -> Bool {
        guard let path = RTSPURL(uri)?.path else { return false }
        let base = RTSPURL(s.tracker.url ?? "")?.path ?? ""
        func trimmed(_ p: String) -> String { p.hasSuffix("/") ? String(p.dropLast()) : p }
        let p = trimmed(path), b = trimmed(base)
        return p == b || p.hasPrefix(b + "/") || s.streams.contains { RTSPURL($0.controlURL).map { trimmed($0.path) == p } ?? false }
    }

    private mutating func adoptSetup(_ sid: MediaSessionID, _ id: MediaConnectionID, _ c: DeviceConnection,
                                     _ request: RTSPMessage, now: MediaTime) -> [MediaRelayAction] {
        guard var s = sessions[sid], let uri = request.uri else { return [] }
        let path = RTSPURL(uri)?.path
        guard let index = s.streams.firstIndex(where: { RTSPURL($0.controlURL)?.path == path }) ?? (s.streams.count == 1 ? 0 : nil) else {
            return [.sendToDevice(id, RTSPMessage.answer(to: request, status: 404, reason: "Not Found").serialized())]
        }
        guard let offered = try? request.transports()?.first(where: { $0.isRTPAVP && $0.isUDP && !$0.isMulticast && $0.clientPort != nil }),
              let ports = offered.clientPort else {
            return [.sendToDevice(id, RTSPMessage.answer(to: request, status: 461, reason: "Unsupported Transport").serialized())]
        }
        var stream = s.streams[index]
        let promise = RTPStreamStart(ssrc: stream.ssrc ?? Self.fallbackSSRC, sequenceNumber: (stream.lastSequence ?? 0) &+ 1,
                                     timestamp: stream.lastTimestamp ?? 0)
        stream.newPlayerRTP = IPEndpoint(c.device.address, ports.first)
        stream.newPlayerRTCP = IPEndpoint(c.device.address, ports.last ?? ports.first &+ 1)
        stream.newPlayerURL = uri
        stream.promised = promise
        s.streams[index] = stream
        sessions[sid] = s
        playerRTCP[stream.newPlayerRTCP!] = (sid, index)
        let header = RTSPSessionHeader(id: s.tracker.sessionID ?? "tsmp\(sid.rawValue)", timeout: s.tracker.timeout)
        let answer = RTSPMessage.setupAnswer(to: request, serverPorts: RTSPPortRange(config.devicePortRTP, config.devicePortRTP &+ 1),
                                             ssrc: promise.ssrc, session: header)
        return [.sendToDevice(id, answer.serialized())] + migrationInput(sid, .newPlayerSetUp, now: now)
    }

    private mutating func adoptPlay(_ sid: MediaSessionID, _ id: MediaConnectionID, _ request: RTSPMessage, now: MediaTime) -> [MediaRelayAction] {
        guard let s = sessions[sid] else { return [] }
        guard let video = s.videoIndex, let promise = s.streams[video].promised else {
            return [.sendToDevice(id, RTSPMessage.answer(to: request, status: 455, reason: "Method Not Valid in This State").serialized())]
        }
        let infos = s.streams.compactMap { st in
            st.promised.map { RTSPRTPInfo(url: st.newPlayerURL ?? st.controlURL, seq: $0.sequenceNumber, rtptime: $0.timestamp) }
        }
        let header = RTSPSessionHeader(id: s.tracker.sessionID ?? "tsmp\(sid.rawValue)", timeout: s.tracker.timeout)
        let answer = RTSPMessage.playAnswer(to: request, session: header, rtpInfo: infos)
        return [.sendToDevice(id, answer.serialized())] + migrationInput(sid, .newPlayerPlaying(promise), now: now)
    }
}
