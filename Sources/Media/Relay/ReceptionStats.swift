/// What the relay received of one RTP stream from the server (RFC 3550 §6.4.1, Appendix A.1,
/// A.3, A.8), for the receiver reports it sends the server itself: the server's RTCP then never
/// pauses while players come and go (between the old player's last report and the new one's
/// first, several seconds apart with ffmpeg), and the server hears about the path to the relay.
struct ReceptionStats: Sendable {
    /// The stream's RTP clock (its rtpmap; 90 kHz for video without one). Without a clock the
    /// interarrival jitter cannot be told, and is reported as 0.
    let clockRate: UInt32?
    /// Clock ticks per nanosecond in 32.32 fixed point: an arrival's time in ticks is one
    /// multiplication per packet, no division.
    private let ticksPerNanosecondQ32: UInt64
    private var base: UInt32?
    private var cycles: UInt32 = 0
    private var maxSequence: UInt16 = 0
    private var received: UInt32 = 0
    private var expectedPrior: UInt32 = 0
    private var receivedPrior: UInt32 = 0
    /// The middle 32 bits of the latest sender report's NTP time, and when it came (§6.4.1 LSR).
    private var lastSR: (middle: UInt32, at: MediaTime)?

    /// The previous packet's relative transit time, in clock units (§6.4.1: arrival minus the
    /// RTP timestamp; only differences count, so the clocks need no common origin).
    private var lastTransit: UInt32?
    /// The interarrival jitter times 16, in clock units (Appendix A.8).
    private var jitterTimes16: UInt32 = 0

    init(clockRate: Int? = nil) {
        self.clockRate = clockRate.flatMap { (1...10_000_000).contains($0) ? UInt32($0) : nil }
        ticksPerNanosecondQ32 = self.clockRate.map { (UInt64($0) << 32) / 1_000_000_000 } ?? 0
    }

    var hasData: Bool { base != nil }

    /// The interarrival jitter in clock units (§6.4.1), as a report carries it.
    var jitter: UInt32 { jitterTimes16 >> 4 }

    /// A packet with sequence number `seq` and RTP timestamp `timestamp` arrived at `arrival` (a
    /// late or repeated one counts as received, as in Appendix A.1; only a newer one moves the
    /// highest number, wrapping into cycles). Every packet updates the jitter (A.8):
    /// J += (|D| - J) / 16, D the change of transit time from the previous packet.
    mutating func record(_ seq: UInt16, timestamp: UInt32, arrival: MediaTime) {
        if clockRate != nil {
            // The product's bits 32-63 are the arrival in ticks, modulo 2^32 as RTP timestamps
            // are. The factor is truncated by under 3 ppm at 90 kHz (30 at 8 kHz); only the
            // change of transit between packets counts, so that is far below a tick.
            let (high, low) = arrival.nanoseconds.multipliedFullWidth(by: ticksPerNanosecondQ32)
            let now = UInt32(truncatingIfNeeded: high << 32 | low >> 32)
            let transit = now &- timestamp
            if let last = lastTransit {
                let d = Int32(bitPattern: transit &- last).magnitude
                jitterTimes16 = jitterTimes16 &+ d &- ((jitterTimes16 &+ 8) >> 4)
            }
            lastTransit = transit
        }
        guard base != nil else {
            base = UInt32(seq)
            maxSequence = seq
            received = 1
            return
        }
        received &+= 1
        if RTPSequence.isAfter(seq, maxSequence) {
            if seq < maxSequence { cycles &+= 0x1_0000 }
            maxSequence = seq
        }
    }

    mutating func senderReport(ntp: UInt64, at now: MediaTime) {
        lastSR = (UInt32(truncatingIfNeeded: ntp >> 16), now)
    }

    /// The report block about `ssrc` for now; the interval's counts start again.
    mutating func block(about ssrc: UInt32, now: MediaTime) -> RTCPReportBlock {
        let highest = cycles | UInt32(maxSequence)
        let expected = highest &- (base ?? UInt32(maxSequence)) &+ 1
        let lost = max(-0x80_0000, min(0x7F_FFFF, Int64(expected) - Int64(received)))
        let expectedInterval = expected &- expectedPrior, receivedInterval = received &- receivedPrior
        expectedPrior = expected
        receivedPrior = received
        let lostInterval = Int64(expectedInterval) - Int64(receivedInterval)
        let fraction = expectedInterval == 0 || lostInterval <= 0 ? 0 : UInt8(min(255, (lostInterval << 8) / Int64(expectedInterval)))
        // DLSR in units of 1/65536 s.
        let dlsr = lastSR.map { UInt32(min(Double(UInt32.max), now.seconds(since: $0.at) * 65_536)) } ?? 0
        return RTCPReportBlock(ssrc: ssrc, fractionLost: fraction, cumulativeLost: Int32(lost), extendedHighestSequence: highest,
                               jitter: jitter, lastSenderReport: lastSR?.middle ?? 0, delaySinceLastSenderReport: dlsr)
    }
}
