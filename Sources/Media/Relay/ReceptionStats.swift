/// What the relay received of one RTP stream from the server (RFC 3550 §6.4.1, Appendix A.1,
/// A.3), for the receiver reports it sends the server itself: the server's RTCP then never
/// pauses while players come and go (between the old player's last report and the new one's
/// first, several seconds apart with ffmpeg), and the server hears about the path to the relay.
struct ReceptionStats: Sendable {
    private var base: UInt32?
    private var cycles: UInt32 = 0
    private var maxSequence: UInt16 = 0
    private var received: UInt32 = 0
    private var expectedPrior: UInt32 = 0
    private var receivedPrior: UInt32 = 0
    /// The middle 32 bits of the latest sender report's NTP time, and when it came (§6.4.1 LSR).
    private var lastSR: (middle: UInt32, at: MediaTime)?

    var hasData: Bool { base != nil }

    /// A packet with sequence number `seq` arrived (a late or repeated one counts as received,
    /// as in Appendix A.1; only a newer one moves the highest number, wrapping into cycles).
    mutating func record(_ seq: UInt16) {
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
                               jitter: 0, lastSenderReport: lastSR?.middle ?? 0, delaySinceLastSenderReport: dlsr)
    }
}
