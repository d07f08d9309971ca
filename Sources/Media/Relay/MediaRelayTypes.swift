import Wire

/// A device's RTSP control connection to the relay, numbered by the caller (the I/O layer) when
/// it accepts it. The relay's own connection to the server for that player's session is named
/// by the same number (`MediaRelayAction.connectUpstream`).
public struct MediaConnectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "c\(rawValue)" }
}

/// A relayed media session, listed by `tsmp flows` as `m<N>` (kind `rtsp`) and migrated by it.
public struct MediaSessionID: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// "m7" or "7".
    public init?(_ text: some StringProtocol) {
        let s = String(text)
        guard let n = UInt64(s.hasPrefix("m") ? String(s.dropFirst()) : s), n > 0 else { return nil }
        rawValue = n
    }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "m\(rawValue)" }

    /// JSON: "m7".
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = MediaSessionID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a media session id: \(text)"))
        }
        self = id
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// The relay's settings.
public struct MediaRelayConfig: Sendable, Equatable {
    /// The UDP ports on the device side to which players send RTCP (and punch RTP): every
    /// session's SETUP answer names this pair as `server_port`, and packets to it are
    /// redirected to the relay. RTP leaves from `rtp`, RTCP from `rtp + 1`.
    public var devicePortRTP: UInt16
    /// The server-side UDP port pairs (even RTP port, RTCP the next) the relay may hand out as
    /// `client_port`, one pair per stream; the I/O layer has them bound.
    public var serverPortPairs: [UInt16]
    public var migration: MediaMigrationConfig
    public var limits: RTSPLimits
    /// Sessions relayed at once, all devices together, and per device address.
    public var maxSessions: Int
    public var maxSessionsPerDevice: Int
    /// RTSP bytes waiting for the other side (a server that is not connected yet, a slow
    /// player) before the connection is closed.
    public var maxPendingBytes: Int
    /// Loss that triggers a quality alert (network-triggered migration, SMP draft §5.2).
    public var lossMonitor: LossMonitorConfig
    /// The longest the server's RTCP from the relay may pause: a stream that got no player's
    /// report for this long gets one of the relay's own (a few per GOP at most).
    public var reportInterval: MediaDuration = .seconds(0.5)
    /// Service mode: RTSP addresses the relay publishes (`VIP:PORT`) and the server each one
    /// stands for. A player's URLs name the published address; the server's name the server.
    public var services: [IPEndpoint: IPEndpoint] = [:]

    public init(devicePortRTP: UInt16, serverPortPairs: [UInt16], migration: MediaMigrationConfig = MediaMigrationConfig(),
                limits: RTSPLimits = RTSPLimits(), maxSessions: Int = 256, maxSessionsPerDevice: Int = 16,
                maxPendingBytes: Int = 256 << 10,
                lossMonitor: LossMonitorConfig = LossMonitorConfig(threshold: 0.1, hold: .seconds(5))) {
        self.devicePortRTP = devicePortRTP; self.serverPortPairs = serverPortPairs; self.migration = migration
        self.limits = limits; self.maxSessions = maxSessions; self.maxSessionsPerDevice = maxSessionsPerDevice
        self.maxPendingBytes = maxPendingBytes; self.lossMonitor = lossMonitor
    }
}

/// What happened, for the relay's inputs.
public enum MediaRelayInput: Sendable, Equatable {
    /// A device's control connection was accepted; `server` is where it was going (the original
    /// destination the redirect replaced) and `device` where it came from, both as the gateway
    /// observed them.
    case accepted(MediaConnectionID, device: IPEndpoint, server: IPEndpoint)
    case deviceBytes(MediaConnectionID, [UInt8])
    case deviceClosed(MediaConnectionID)
    case upstreamConnected(MediaConnectionID)
    case upstreamBytes(MediaConnectionID, [UInt8])
    case upstreamClosed(MediaConnectionID, reason: String)
    /// A datagram on a server-side port (`serverPortPairs`: even RTP, odd RTCP), from `from`.
    case serverDatagram(localPort: UInt16, from: IPEndpoint, [UInt8])
    /// A datagram on the device-side pair (`rtcp`: to `devicePortRTP + 1`), from a player.
    case deviceDatagram(rtcp: Bool, from: IPEndpoint, [UInt8])
    case tick
}

/// What the caller must do, in order.
public enum MediaRelayAction: Sendable, Equatable {
    /// Open the relay's connection to the server for the session of device connection `id`
    /// (asked for with the player's first readable request; bytes wait for `upstreamConnected`).
    case connectUpstream(MediaConnectionID, to: IPEndpoint)
    case sendToDevice(MediaConnectionID, [UInt8])
    case sendUpstream(MediaConnectionID, [UInt8])
    /// Close the device's control connection (after sending what was queued for it).
    case closeDevice(MediaConnectionID)
    case closeUpstream(MediaConnectionID)
    /// A datagram from the server-side port `fromPort` to the server.
    case sendToServer(fromPort: UInt16, to: IPEndpoint, [UInt8])
    /// A datagram from the device-side pair (`rtcp`: its RTCP port) to a player.
    case sendToPlayer(rtcp: Bool, to: IPEndpoint, [UInt8])
    /// Something worth a log line or an event.
    case event(MediaRelayEvent)
}

/// What the relay reports as it happens.
public enum MediaRelayEvent: Sendable, Equatable {
    case sessionStarted(MediaSessionID, url: String, device: IPEndpoint)
    case sessionEnded(MediaSessionID, reason: String)
    case migrationPhase(MediaSessionID, MediaMigrationPhase)
    case migrationFinished(MediaSessionID, MediaMigrationReport)
    case qualityAlert(MediaSessionID, QualityAlert)
    /// A connection or datagram was refused (reason), nothing changed.
    case refused(String)
}

/// Counters of what the relay dropped, by reason (`tsmp_media_dropped_total{reason}`).
public struct MediaRelayCounters: Sendable, Equatable, Codable {
    public var rtpRelayed: UInt64 = 0
    public var rtcpRelayed: UInt64 = 0
    public var badRTP: UInt64 = 0
    public var badRTCP: UInt64 = 0
    public var badRTSP: UInt64 = 0
    public var unknownSource: UInt64 = 0
    public var refusedConnections: UInt64 = 0
    public var qualityAlerts: UInt64 = 0
    public var migrationsDone: UInt64 = 0
    public var migrationsRolledBack: UInt64 = 0
    public var sessionsStarted: UInt64 = 0
    public init() {}
}

/// One session as `tsmp flows` shows it.
public struct MediaSessionSummary: Sendable, Equatable, Codable {
    public var id: MediaSessionID
    public var kind = "rtsp"
    public var url: String
    public var device: String
    public var server: String
    public var state: String
    public var codec: String?
    public var packets: UInt64
    public var bytes: UInt64
    /// From the player's latest RTCP receiver report (RFC 3550 §6.4.1).
    public var fractionLost: Double?
    public var cumulativeLost: Int32?
    public var jitter: UInt32?
    /// The loss that triggered the latest quality alert.
    public var alertFractionLost: Double?
    public var migration: MediaMigrationPhase?
    public var migratingTo: String?
}
