/// When the network should trigger a migration (SMP draft §5.2): the fraction of lost RTP
/// packets that a receiver reports in RTCP (RFC 3550 §6.4.1 "fraction lost") stays at or above
/// a threshold for a hold time. Then one quality alert, and quiet until the loss falls below the
/// recovery threshold; a later episode alerts again.
public struct LossMonitorConfig: Sendable, Equatable {
    /// Fraction lost (0...1) at or above which loss counts.
    public var threshold: Double
    /// How long the loss must last before the alert.
    public var hold: MediaDuration
    /// Fraction lost below which an alerted session counts as recovered (at most `threshold`;
    /// lower for hysteresis).
    public var recoveryThreshold: Double

    public init(threshold: Double, hold: MediaDuration, recoveryThreshold: Double? = nil) {
        self.threshold = min(max(threshold, 0), 1)
        self.hold = hold
        self.recoveryThreshold = min(max(recoveryThreshold ?? threshold, 0), self.threshold)
    }
}

/// What the monitor saw when loss held: the numbers `tsmp flows`, metrics and the agent's
/// `--on-quality` hook show.
public struct QualityAlert: Sendable, Equatable {
    /// The latest report's fraction lost (0...1).
    public var fractionLost: Double
    /// The highest fraction lost during the episode.
    public var peakFractionLost: Double
    /// Since when (the first report at or above the threshold).
    public var since: MediaTime
    public var cumulativeLost: Int32
    /// Interarrival jitter in RTP timestamp units.
    public var jitter: UInt32
    public init(fractionLost: Double, peakFractionLost: Double, since: MediaTime, cumulativeLost: Int32, jitter: UInt32) {
        self.fractionLost = fractionLost; self.peakFractionLost = peakFractionLost; self.since = since
        self.cumulativeLost = cumulativeLost; self.jitter = jitter
    }
}

public enum LossMonitorEvent: Sendable, Equatable {
    case qualityAlert(QualityAlert)
    /// The loss fell below the recovery threshold after an alert.
    case recovered(fractionLost: Double)
}

/// Loss of one stream as its receiver reports it. Feed it the report blocks about the stream's
/// SSRC (as the server sent it; the caller picks them out of each compound RR/SR) and ticks.
public struct LossMonitor: Sendable {
    enum State: Sendable, Equatable {
        case quiet
        /// At or above the threshold since `since`; not yet for the hold time.
        case lossy(since: MediaTime, peak: Double)
        case alerted(since: MediaTime)
    }

    public let config: LossMonitorConfig
    private(set) var state: State = .quiet
    private var latest: RTCPReportBlock?
    public private(set) var alerts = 0

    public init(config: LossMonitorConfig) { self.config = config }

    /// The latest report's fraction lost (0...1), for `tsmp flows`.
    public var fractionLost: Double? { latest?.fractionLostRatio }
    public var latestReport: RTCPReportBlock? { latest }
    public var isAlerted: Bool { if case .alerted = state { true } else { false } }

    /// A report block about the monitored stream.
    public mutating func handle(report: RTCPReportBlock, now: MediaTime) -> [LossMonitorEvent] {
        latest = report
        let fraction = report.fractionLostRatio
        switch state {
        case .quiet:
            guard fraction >= config.threshold else { return [] }
            state = .lossy(since: now, peak: fraction)
            return check(now: now)
        case .lossy(let since, let peak):
            guard fraction >= config.threshold else { state = .quiet; return [] }
            state = .lossy(since: since, peak: max(peak, fraction))
            return check(now: now)
        case .alerted:
            guard fraction < config.recoveryThreshold else { return [] }
            state = .quiet
            return [.recovered(fractionLost: fraction)]
        }
    }

    /// Time passed: the loss may have held long enough since the last report.
    public mutating func tick(now: MediaTime) -> [LossMonitorEvent] { check(now: now) }

    private mutating func check(now: MediaTime) -> [LossMonitorEvent] {
        guard case .lossy(let since, let peak) = state, now >= since.adding(config.hold), let latest else { return [] }
        state = .alerted(since: since)
        alerts += 1
        return [.qualityAlert(QualityAlert(fractionLost: latest.fractionLostRatio, peakFractionLost: peak, since: since,
                                           cumulativeLost: latest.cumulativeLost, jitter: latest.jitter))]
    }
}
