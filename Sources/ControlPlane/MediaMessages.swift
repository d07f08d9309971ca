import Namespace

/// The proxy to the target device's agent when a media session moves there (SMP draft §5.3,
/// the media counterpart of the MTR): the session's URL, which the agent's `--exec` opens
/// (`TSMP_MEDIA_URL`); the proxy answers that player from the session's cache.
public struct MediaTransferOffer: Codable, Sendable, Equatable {
    public var session: String
    public var url: String
    public var from: DeviceID
    public var to: DeviceID
    public init(session: String, url: String, from: DeviceID, to: DeviceID) {
        self.session = session; self.url = url; self.from = from; self.to = to
    }
}

/// The proxy to the owning device's agent when a media session's loss stayed above the
/// threshold (SMP draft §5.2, network-triggered migration): the agent's `--on-quality` hook
/// decides; its exit status 0 is the owner's confirmation, and the agent then asks the proxy
/// to move the session to `next` (an MFR).
public struct QualityNotice: Codable, Sendable, Equatable {
    public var session: String
    public var url: String
    public var fractionLost: Double
    public var peakFractionLost: Double
    /// The user's next preferred online device (the namespace's ranking), if any.
    public var next: DeviceID?
    public var owner: DeviceID
    public init(session: String, url: String, fractionLost: Double, peakFractionLost: Double, next: DeviceID?, owner: DeviceID) {
        self.session = session; self.url = url; self.fractionLost = fractionLost; self.peakFractionLost = peakFractionLost
        self.next = next; self.owner = owner
    }
}

/// The agent's answer to a quality notice: whether the owner confirmed, and the MFR's outcome.
public struct QualityVerdict: Codable, Sendable, Equatable {
    public var confirmed: Bool
    public var reason: String?
    public init(confirmed: Bool, reason: String?) { self.confirmed = confirmed; self.reason = reason }
}

/// One media session's answer to an MFR: started, or why not.
public struct MediaStartResult: Codable, Sendable, Equatable {
    public var session: String
    public var error: String?
    public init(session: String, error: String?) { self.session = session; self.error = error }
}
