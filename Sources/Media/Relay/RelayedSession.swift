import Wire

/// One stream of a relayed session (RFC 2326 §10.4: one SETUP each): the server-side port pair
/// the relay gave the server as `client_port`, where the server sends from, where the current
/// player (and, during a migration, the new player) receives, and what the relay has seen.
struct RelayedStream: Sendable {
    /// The URL of the SETUP request, as the player named it.
    var controlURL: String
    /// The relay's server-side RTP port (RTCP is the next one).
    let serverPair: UInt16
    /// The server's RTP and RTCP endpoints (its address, `server_port` of its answer).
    var serverRTP: IPEndpoint?
    var serverRTCP: IPEndpoint?
    /// The current player's `client_port` pair.
    var playerRTP: IPEndpoint
    var playerRTCP: IPEndpoint
    /// The new player's, between its SETUP and the switch.
    var newPlayerRTP: IPEndpoint?
    var newPlayerRTCP: IPEndpoint?
    /// The URL the new player set this stream up with (its RTP-Info names it).
    var newPlayerURL: String?
    /// What the new player was promised (SETUP's ssrc, PLAY's RTP-Info).
    var promised: RTPStreamStart?
    /// The rewrite the current player's packets get (after a migration): nil, none.
    var continuity: RTPContinuity?
    /// After a switch, a stream other than the video one takes its rewrite from its next packet.
    var awaitingContinuity = false
    var ssrc: UInt32?
    var detector: GOPBoundaryDetector?
    var lastSequence: UInt16?
    var lastTimestamp: UInt32?
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
    var reception = ReceptionStats()
    /// When RTCP last went to the server for this stream (a player's, or the relay's own).
    var lastRTCPToServer: MediaTime?
    /// RTP over the RTSP connection (§10.12): relayed as it is, never migrated.
    var interleaved = false
}

/// What a device's control connection is to the relay.
enum DeviceConnectionRole: Sendable, Equatable {
    /// Its requests go to the server (the session's player, or the new player after a switch).
    case relaying(MediaSessionID)
    /// The target of a migration: the relay answers it from the session's cache.
    case adopting(MediaSessionID)
    /// An old player after the switch: answered locally until it leaves.
    case retired
}

struct DeviceConnection: Sendable {
    let device: IPEndpoint
    let server: IPEndpoint
    var parser: RTSPMessageParser
    var role: DeviceConnectionRole
}

/// One relayed RTSP session (RFC 2326) and its streams.
struct RelayedSession: Sendable {
    let id: MediaSessionID
    let server: IPEndpoint
    /// Service mode: the published address the player connected to (its URLs name it).
    var published: IPEndpoint?
    /// The relay's connection to the server, named after the device connection that opened it.
    let upstream: MediaConnectionID
    /// The relay's connection to the server is asked for with the player's first readable
    /// request (a connection that sends nothing valid costs the server nothing).
    var upstreamRequested = false
    var upstreamConnected = false
    var upstreamQueue: [UInt8] = []
    var upstreamParser: RTSPMessageParser
    /// The player's control connection; nil once it left (a migration may still go on).
    var player: MediaConnectionID?
    var playerAddress: IPAddress
    var tracker: RTSPSessionTracker
    var streams: [RelayedStream] = []
    /// SETUP requests sent to the server, by CSeq: the pair given and the player's ports.
    var pendingSetups: [Int: (pair: UInt16, playerRTP: IPEndpoint, playerRTCP: IPEndpoint)] = [:]
    /// Requests of a later player sent upstream under the relay's CSeq: its connection and CSeq.
    var renumbered: [Int: (connection: MediaConnectionID, cseq: String)] = [:]
    /// The next CSeq the relay uses upstream (above every CSeq the first player used).
    var nextUpstreamCSeq = 1
    var migration: MediaMigration?
    var target: IPAddress?
    var newPlayer: MediaConnectionID?
    var loss: LossMonitor
    var alert: QualityAlert?
    /// TEARDOWN went upstream: the session ends with its answer (or the connection's end).
    var endingSince: MediaTime?
    var announced = false
    let createdAt: MediaTime

    var videoIndex: Int? { streams.firstIndex { $0.detector != nil } }

    /// A server's URL as the player names it (service mode: the published address).
    func playerURL(_ url: String) -> String {
        published.map { RTSPURL.rebased(url, from: server, to: $0) } ?? url
    }
}
