/// The steps of moving a media session to another device (SMP draft §5.3-§5.4), in order; a
/// migration ends `done` or `rolledBack`.
public enum MediaMigrationPhase: String, Sendable, Codable, CaseIterable {
    /// Asked for; the old player still receives everything.
    case requested
    /// The new player set up its session against the proxy (SETUP answered by the proxy).
    case newPlayerReady = "new-player-ready"
    /// The new player sent PLAY: the proxy waits for the first packet of the next GOP.
    case waitingForGOP = "waiting-for-gop"
    /// That packet went to the new player; from it on every packet does, rewritten.
    case switched
    /// The old player's session was ended (RTCP BYE, RTSP TEARDOWN).
    case done
    /// The new player never became ready, or no GOP came in time: the old player kept the stream.
    case rolledBack = "rolled-back"
}

/// Deadlines of a media migration.
public struct MediaMigrationConfig: Sendable, Equatable {
    /// From the request until the new player has sent PLAY.
    public var readyTimeout: MediaDuration
    /// From PLAY until a GOP starts (a few GOP periods; a stream without keyframes never switches).
    public var gopTimeout: MediaDuration
    /// From the switch until the old player's session is taken as ended without confirmation.
    public var oldPlayerGrace: MediaDuration

    public init(readyTimeout: MediaDuration = .seconds(15), gopTimeout: MediaDuration = .seconds(10),
                oldPlayerGrace: MediaDuration = .seconds(2)) {
        self.readyTimeout = readyTimeout; self.gopTimeout = gopTimeout; self.oldPlayerGrace = oldPlayerGrace
    }
}

/// An RTP packet of the session's stream from the server, as the migration needs to see it.
public struct MediaPacketInfo: Sendable, Equatable {
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    /// `GOPBoundaryDetector.observe` said this is the first packet of a new GOP.
    public var isGOPStart: Bool
    public init(sequenceNumber: UInt16, timestamp: UInt32, isGOPStart: Bool) {
        self.sequenceNumber = sequenceNumber; self.timestamp = timestamp; self.isGOPStart = isGOPStart
    }
}

/// What drives a media migration.
public enum MediaMigrationInput: Sendable, Equatable {
    /// The new player's SETUP was answered by the proxy.
    case newPlayerSetUp
    /// The new player's PLAY was answered; `start` is what the proxy promised it (RTP-Info, ssrc).
    case newPlayerPlaying(RTPStreamStart)
    /// A packet of the server's stream arrived.
    case rtp(MediaPacketInfo)
    /// The old player's session was ended (BYE sent, TEARDOWN answered or its timeout passed).
    case oldPlayerEnded
    /// Give up (an operator, or the new player's connection closed before the switch).
    case cancel(reason: String)
    /// Time passed.
    case tick
}

/// Where one RTP packet goes.
public enum MediaPacketRoute: Sendable, Equatable {
    case oldPlayer
    /// To the new player after `continuity.apply(to:)`.
    case newPlayer(RTPContinuity)
}

/// What the proxy must do.
public enum MediaMigrationAction: Sendable, Equatable {
    /// Send the packet of the `.rtp` input this way.
    case route(MediaPacketRoute)
    /// End the old player's session: RTCP BYE toward its player, RTSP TEARDOWN of its proxy session.
    case endOldPlayer
    /// Rolled back after the new player set up: end the proxy's session with it.
    case endNewPlayer(reason: String)
    /// The phase changed (for logs and `tsmp flows`).
    case phaseChanged(MediaMigrationPhase)
    /// The migration finished (done or rolled back).
    case finished(MediaMigrationReport)
}

/// What a media migration did, with the time of each phase in seconds after the request.
public struct MediaMigrationReport: Sendable, Codable, Equatable {
    public struct PhaseTime: Sendable, Codable, Equatable {
        public var phase: MediaMigrationPhase
        public var seconds: Double
    }
    public var phase: MediaMigrationPhase
    public var phases: [PhaseTime]
    /// The server's RTP sequence number and timestamp of the first packet the new player got.
    public var switchedAtSequence: UInt16?
    public var switchedAtTimestamp: UInt32?
    /// Frames (access units) that arrived between PLAY and the switch: the new player could not
    /// use them (they belong to a GOP it did not see start), so it skipped them.
    public var framesSkipped: Int
    public var reason: String?
}
