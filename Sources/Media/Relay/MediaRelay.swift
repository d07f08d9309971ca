import Wire

/// The RTSP/RTP relay of multimedia service migration (SMP draft §4.3, §5.3-§5.4) as a sans-IO
/// state machine: the caller accepts device control connections (redirected to it), opens the
/// relay's own connection to each server, owns the UDP sockets, and feeds everything it reads
/// to `handle(_:now:)`, which answers with the bytes to send where.
///
/// - Relaying: a player's RTSP requests go to the server with `client_port` replaced by a
///   server-side pair of the relay; answers come back with `server_port` replaced by the
///   device-side pair (to which the gateway redirects the player's RTCP). RTP and RTCP are
///   relayed both ways; the session's description (SDP), transports and state are kept
///   (`RTSPSessionTracker`).
/// - Migrating (`migrate(_:to:deadline:now:)`): a connection from the target device to the same
///   server is answered by the relay from the cache (DESCRIBE, SETUP, PLAY), the server keeps
///   its one session, and the stream switches to the new player right before the first packet
///   of the next GOP (`MediaMigration`), rewritten to the SSRC/seq/timestamp it was promised.
///   The old player gets an RTCP BYE and its control connection is closed.
///
/// Invariants:
/// - Who a player is comes from the addresses the gateway observed (accept, recvfrom), never
///   from a header; datagrams from anyone but the session's server or its players are dropped.
/// - Bad RTSP, RTP or RTCP is counted and dropped; the session goes on (a control connection
///   whose byte stream cannot be parsed any more is closed, with a 400 answer).
/// - Every server-side pair handed out is given back when its session ends.
public struct MediaRelay: Sendable {
    public let config: MediaRelayConfig
    public internal(set) var counters = MediaRelayCounters()
    var connections: [MediaConnectionID: DeviceConnection] = [:]
    var sessions: [MediaSessionID: RelayedSession] = [:]
    /// Session of each upstream connection (named by the device connection that opened it).
    var upstreams: [MediaConnectionID: MediaSessionID] = [:]
    /// Server-side RTP port -> (session, stream index).
    var pairOwners: [UInt16: (MediaSessionID, Int)] = [:]
    /// A player's RTCP endpoint -> (session, stream index).
    var playerRTCP: [IPEndpoint: (MediaSessionID, Int)] = [:]
    var freePairs: [UInt16]
    var nextSession: UInt64 = 1
    /// Finished migrations' reports, newest last (bounded).
    public private(set) var reports: [(MediaSessionID, MediaMigrationReport)] = []
    static let maxReports = 64
    /// How long a control connection may take to set a session up (SETUP answered).
    static let setupDeadline = MediaDuration.seconds(30)

    public init(config: MediaRelayConfig) {
        self.config = config
        freePairs = config.serverPortPairs.reversed()
    }

    public var sessionCount: Int { sessions.count }
    public var freePairCount: Int { freePairs.count }

    /// The SSRC of the relay's own receiver reports to the server for session `sid` ("tsm" and
    /// the session's low byte).
    public static func reportSSRC(_ sid: MediaSessionID) -> UInt32 { 0x7473_6D00 | UInt32(truncatingIfNeeded: sid.rawValue & 0xFF) }

    /// A receiver report of the relay's own to the server for each stream whose RTCP has been
    /// quiet for `interval` (RFC 3550 §6.4.2: the relay is a receiver of the server's stream).
    static func ownReports(_ s: inout RelayedSession, every interval: MediaDuration, now: MediaTime) -> [MediaRelayAction] {
        var actions: [MediaRelayAction] = []
        for i in s.streams.indices {
            guard let server = s.streams[i].serverRTCP, let ssrc = s.streams[i].ssrc, s.streams[i].reception.hasData,
                  s.streams[i].lastRTCPToServer.map({ now >= $0.adding(interval) }) ?? true else { continue }
            let block = s.streams[i].reception.block(about: ssrc, now: now)
            s.streams[i].lastRTCPToServer = now
            actions.append(.sendToServer(fromPort: s.streams[i].serverPair &+ 1, to: server,
                                         RTCPBuilder.receiverReport(ssrc: reportSSRC(s.id), reports: [block])))
        }
        return actions
    }

    public mutating func handle(_ input: MediaRelayInput, now: MediaTime) -> [MediaRelayAction] {
        switch input {
        case .accepted(let id, let device, let server):
            return accepted(id, device: device, server: server, now: now)
        case .deviceBytes(let id, let bytes):
            return deviceBytes(id, bytes, now: now)
        case .deviceClosed(let id):
            return deviceClosed(id, now: now)
        case .upstreamConnected(let id):
            guard let sid = upstreams[id], var s = sessions[sid] else { return [] }
            s.upstreamConnected = true
            let queued = s.upstreamQueue
            s.upstreamQueue = []
            sessions[sid] = s
            return queued.isEmpty ? [] : [.sendUpstream(id, queued)]
        case .upstreamBytes(let id, let bytes):
            return upstreamBytes(id, bytes, now: now)
        case .upstreamClosed(let id, let reason):
            guard let sid = upstreams[id] else { return [] }
            return endSession(sid, reason: "the server's connection closed: \(reason)", closeUpstream: false)
        case .serverDatagram(let port, let from, let bytes):
            return serverDatagram(port, from: from, bytes, now: now)
        case .deviceDatagram(let rtcp, let from, let bytes):
            return deviceDatagram(rtcp: rtcp, from: from, bytes, now: now)
        case .tick:
            return tick(now: now)
        }
    }

    // MARK: Connections

    private mutating func accepted(_ id: MediaConnectionID, device: IPEndpoint, server: IPEndpoint, now: MediaTime) -> [MediaRelayAction] {
        // The target of a migration to the same server is answered from the cache.
        let upstream = config.services[server] ?? server
        if let (sid, _) = sessions.first(where: { $0.value.target == device.address && $0.value.newPlayer == nil
                                                   && $0.value.server == upstream && $0.value.migration?.isFinished == false }) {
            sessions[sid]?.newPlayer = id
            connections[id] = DeviceConnection(device: device, server: server, parser: RTSPMessageParser(limits: config.limits),
                                               role: .adopting(sid))
            return []
        }
        connections[id] = DeviceConnection(device: device, server: server, parser: RTSPMessageParser(limits: config.limits),
                                           role: .retired)
        return startRelaying(id, now: now)
    }

    /// Makes `id` a relayed player with a session of its own and the relay's connection to its server.
    mutating func startRelaying(_ id: MediaConnectionID, now: MediaTime) -> [MediaRelayAction] {
        guard let c = connections[id] else { return [] }
        let mine = sessions.values.filter { $0.playerAddress == c.device.address }.count
        if sessions.count >= config.maxSessions || mine >= config.maxSessionsPerDevice {
            counters.refusedConnections += 1
            connections[id] = nil
            let why = sessions.count >= config.maxSessions ? "the relay has \(config.maxSessions) sessions" : "\(c.device.address) has \(mine) sessions"
            return [.event(.refused("RTSP connection from \(c.device) refused: \(why)")), .closeDevice(id)]
        }
        let sid = MediaSessionID(nextSession)
        nextSession += 1
        let server = config.services[c.server] ?? c.server
        sessions[sid] = RelayedSession(id: sid, server: server, published: config.services[c.server] == nil ? nil : c.server,
                                       upstream: id, upstreamParser: RTSPMessageParser(limits: config.limits),
                                       player: id, playerAddress: c.device.address, tracker: RTSPSessionTracker(now: now),
                                       loss: LossMonitor(config: config.lossMonitor), createdAt: now)
        upstreams[id] = sid
        connections[id]?.role = .relaying(sid)
        return []
    }

    mutating func deviceClosed(_ id: MediaConnectionID, now: MediaTime) -> [MediaRelayAction] {
        guard let c = connections.removeValue(forKey: id) else { return [] }
        switch c.role {
        case .retired:
            return []
        case .adopting(let sid):
            sessions[sid]?.newPlayer = nil
            return migrationInput(sid, .cancel(reason: "the new player closed its control connection"), now: now)
        case .relaying(let sid):
            guard var s = sessions[sid] else { return [] }
            if s.newPlayer == id {
                // The new player after the switch is the session's player now: it left.
                s.newPlayer = nil
            }
            guard s.player == id else { sessions[sid] = s; return [] }
            s.player = nil
            sessions[sid] = s
            if let m = s.migration, !m.isFinished { return [] }
            return endSession(sid, reason: "the player closed its control connection", closeUpstream: true)
        }
    }

    /// Ends a session: its connections close, its ports are given back.
    mutating func endSession(_ sid: MediaSessionID, reason: String, closeUpstream: Bool) -> [MediaRelayAction] {
        guard let s = sessions.removeValue(forKey: sid) else { return [] }
        var actions: [MediaRelayAction] = []
        upstreams[s.upstream] = nil
        if closeUpstream && s.upstreamRequested { actions.append(.closeUpstream(s.upstream)) }
        for c in [s.player, s.newPlayer].compactMap({ $0 }) where connections[c] != nil {
            connections[c] = nil
            actions.append(.closeDevice(c))
        }
        for (i, stream) in s.streams.enumerated() {
            pairOwners[stream.serverPair] = nil
            freePairs.append(stream.serverPair)
            for e in [stream.playerRTCP, stream.newPlayerRTCP].compactMap({ $0 }) where playerRTCP[e]?.0 == sid && playerRTCP[e]?.1 == i {
                playerRTCP[e] = nil
            }
        }
        for (_, pending) in s.pendingSetups { freePairs.append(pending.pair) }
        if let m = s.migration, !m.isFinished {
            var m = m
            let report = m.handle(.cancel(reason: "the session ended: \(reason)"), now: MediaTime(nanoseconds: 0))
            for case .finished(let r) in report { remember(sid, r); actions.append(.event(.migrationFinished(sid, r))) }
        }
        actions.append(.event(.sessionEnded(sid, reason: reason)))
        return actions
    }

    mutating func remember(_ sid: MediaSessionID, _ report: MediaMigrationReport) {
        if report.phase == .done { counters.migrationsDone += 1 } else { counters.migrationsRolledBack += 1 }
        reports.append((sid, report))
        if reports.count > Self.maxReports { reports.removeFirst() }
    }

    private mutating func tick(now: MediaTime) -> [MediaRelayAction] {
        var actions: [MediaRelayAction] = []
        for sid in sessions.keys.sorted() {
            guard var s = sessions[sid] else { continue }
            if let since = s.endingSince, now >= since.adding(.seconds(5)) {
                actions += endSession(sid, reason: "TEARDOWN", closeUpstream: true)
                continue
            }
            if s.tracker.state == .initial, now >= s.createdAt.adding(Self.setupDeadline) {
                actions += endSession(sid, reason: "no session set up within \(Int(Double(Self.setupDeadline.nanoseconds) / 1e9))s", closeUpstream: true)
                continue
            }
            for event in s.tracker.handle(.tick, now: now) {
                if case .ended(let reason) = event {
                    sessions[sid] = s
                    actions += endSession(sid, reason: reason, closeUpstream: true)
                }
            }
            guard sessions[sid] != nil else { continue }
            for event in s.loss.tick(now: now) { actions += lossEvent(&s, event) }
            if s.tracker.state == .playing { actions += Self.ownReports(&s, every: config.reportInterval, now: now) }
            sessions[sid] = s
            actions += migrationInput(sid, .tick, now: now)
        }
        return actions
    }

    mutating func lossEvent(_ s: inout RelayedSession, _ event: LossMonitorEvent) -> [MediaRelayAction] {
        guard case .qualityAlert(let alert) = event else { return [] }
        s.alert = alert
        counters.qualityAlerts += 1
        return [.event(.qualityAlert(s.id, alert))]
    }

    // MARK: Listing

    public func summaries() -> [MediaSessionSummary] {
        sessions.values.sorted { $0.id < $1.id }.map { s in
            let latest = s.loss.latestReport
            return MediaSessionSummary(
                id: s.id, url: s.playerURL(s.tracker.url ?? ""), device: s.playerAddress.description, server: s.server.description,
                state: s.tracker.state.rawValue, codec: s.tracker.codecName,
                packets: s.streams.reduce(0) { $0 + $1.packets }, bytes: s.streams.reduce(0) { $0 + $1.bytes },
                fractionLost: latest?.fractionLostRatio, cumulativeLost: latest?.cumulativeLost, jitter: latest?.jitter,
                alertFractionLost: s.alert?.fractionLost,
                migration: s.migration?.phase, migratingTo: s.target?.description)
        }
    }

    /// The report of the latest migration of `sid`: running, or finished.
    public func migrationReport(_ sid: MediaSessionID) -> MediaMigrationReport? {
        if let m = sessions[sid]?.migration { return m.report }
        return reports.last { $0.0 == sid }?.1
    }
}
