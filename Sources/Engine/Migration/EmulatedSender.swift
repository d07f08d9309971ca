import Wire

/// The proxy's own TCP sender toward a device during a migration (TSMP draft §4.3.2; DESIGN
/// §6 step 4): it delivers the cached bytes `[una, end)` of the server's stream (and the
/// server's FIN, when the cache holds one) with slow start and congestion avoidance (RFC 5681
/// §3.1), NewReno fast retransmit and recovery (RFC 6582), and a retransmission timer (RFC
/// 6298). It decides *what* to send and when; the engine builds the packets.
///
/// Invariants: `una <= next <= highestSent <= end (+1 for FIN)`; bytes in flight `next - una`
/// never exceed `min(cwnd, peer window)` except a single zero-window probe; the timer runs
/// exactly while something is unacknowledged.
struct EmulatedSender: Sendable {
    /// Oldest unacknowledged sequence number (server's sequence space).
    private(set) var una: SeqNumber
    /// Next sequence number to send.
    private(set) var next: SeqNumber
    /// Highest sequence number sent so far (SND.MAX): after a timeout `next` goes back to
    /// `una`, but acks up to here stay valid, and segments below it are retransmissions.
    private(set) var highestSent: SeqNumber
    /// End of the data to deliver (grows when more of the server's bytes are cached, `extend`).
    private(set) var end: SeqNumber
    /// Deliver a FIN after `end` (the server had closed its direction).
    private(set) var fin: Bool
    private(set) var mss: Int
    private(set) var cwnd: Int
    private(set) var ssthresh = Int.max
    /// The receiver's window in bytes (already scaled).
    var peerWindow: Int
    private(set) var dupAcks = 0
    /// NewReno: recovery ends when `una` passes this (RFC 6582 §3.2 "recover").
    private var recover: SeqNumber?
    // RFC 6298 state, nanoseconds.
    private var srtt: Double?
    private var rttvar: Double = 0
    private(set) var rto: UInt64 = 1_000_000_000
    private(set) var timerDeadline: Instant?
    /// Karn's algorithm: one timed segment at a time, never a retransmitted one.
    private var timing: (seq: SeqNumber, sentAt: Instant)?
    private(set) var retransmissions = 0
    private(set) var timeouts = 0

    static let minimumRTO: UInt64 = 200_000_000   // Linux's TCP_RTO_MIN
    static let maximumRTO: UInt64 = 60_000_000_000

    init(from start: SeqNumber, to end: SeqNumber, fin: Bool, mss: Int, peerWindow: Int) {
        una = start
        next = start
        highestSent = start
        self.end = end
        self.fin = fin
        self.mss = max(mss, 64)
        // RFC 6928: initial window of 10 segments.
        cwnd = 10 * self.mss
        self.peerWindow = peerWindow
    }

    /// The sequence number just past everything to deliver (FIN included).
    var finalSeq: SeqNumber { fin ? end + 1 : end }
    var isComplete: Bool { una == finalSeq }
    var bytesInFlight: Int { Int(una.distance(to: next)) }

    /// A segment to transmit: `length` bytes of the cache from `seq`, with FIN if `fin`.
    struct Segment: Equatable, Sendable {
        var seq: SeqNumber
        var length: Int
        var fin: Bool
        var isRetransmission: Bool
    }

    /// More of the server's stream was cached after the sender started (bytes still in flight
    /// at the pause, a probe's byte the proxy accepted, the server's FIN): deliver them too.
    mutating func extend(to newEnd: SeqNumber, fin newFin: Bool) {
        guard !fin, newEnd.greaterThanOrEqual(end) else { return } // nothing comes after a FIN
        end = newEnd
        fin = newFin
    }

    /// Processes an acknowledgement from the device (its ack in the server's sequence space
    /// and its window in bytes). Returns segments to retransmit now (fast retransmit).
    /// `carriesData`: the segment carries data or FIN, so it is no duplicate ack (RFC 5681 §2).
    mutating func acknowledge(_ ack: SeqNumber, window: Int, now: Instant, carriesData: Bool = false) -> [Segment] {
        peerWindow = window
        guard ack.lessThanOrEqual(highestSent) else { return [] } // acks what was never sent: ignore
        if ack.greaterThan(una) {
            let acked = Int(una.distance(to: ack))
            if let t = timing, ack.greaterThan(t.seq) {
                sampleRTT(Double(now.nanoseconds &- t.sentAt.nanoseconds))
                timing = nil
            }
            una = ack
            if next.lessThan(ack) { next = ack } // after a timeout: the receiver had more than `next`
            dupAcks = 0
            var out: [Segment] = []
            if let r = recover {
                if ack.greaterThanOrEqual(r) {
                    cwnd = ssthresh            // full ack: leave recovery (RFC 6582 §3.2 step 3)
                    recover = nil
                } else {
                    // Partial ack: retransmit the next hole, deflate (RFC 6582 §3.2 step 3).
                    out.append(retransmitSegment())
                    cwnd = max(cwnd - acked + mss, mss)
                }
            } else if cwnd < ssthresh {
                cwnd += min(acked, mss)        // slow start (RFC 5681 §3.1, with ABC L=1)
            } else {
                cwnd += max(1, mss * mss / cwnd) // congestion avoidance
            }
            timerDeadline = una == next ? nil : now + rto
            return out
        }
        // Duplicate ack (RFC 5681 §2): nothing new acknowledged while data is outstanding.
        guard ack == una, next.greaterThan(una), !carriesData else { return [] }
        dupAcks += 1
        if dupAcks == 3 && recover == nil {
            ssthresh = max(bytesInFlight / 2, 2 * mss)
            cwnd = ssthresh + 3 * mss
            recover = highestSent
            timerDeadline = now + rto
            return [retransmitSegment()]
        }
        if recover != nil { cwnd += mss } // inflate during recovery
        return []
    }

    /// New segments allowed by the windows now.
    mutating func segmentsToSend(now: Instant, limit: Int) -> [Segment] {
        var out: [Segment] = []
        let window = min(cwnd, peerWindow)
        while out.count < limit {
            if next.lessThan(end) {
                let inFlight = bytesInFlight
                let room = window - inFlight
                if room <= 0 {
                    // Zero window with nothing in flight: the timer will probe (RFC 9293 §3.8.6.1).
                    if peerWindow == 0 && inFlight == 0 && timerDeadline == nil { timerDeadline = now + rto }
                    break
                }
                let length = min(mss, Int(next.distance(to: end)), room)
                if length < mss && length < Int(next.distance(to: end)) && inFlight > 0 { break } // no silly segments
                let last = next + UInt32(length) == end
                // Below SND.MAX (going back after a timeout): a retransmission, never timed (Karn).
                let again = next.lessThan(highestSent)
                out.append(Segment(seq: next, length: length, fin: last && fin, isRetransmission: again))
                if again { retransmissions += 1 } else if timing == nil { timing = (next, now) }
                next = next + UInt32(length) + (last && fin ? 1 : 0)
            } else if fin && next == end {
                let again = next.lessThan(highestSent)
                out.append(Segment(seq: next, length: 0, fin: true, isRetransmission: again))
                if again { retransmissions += 1 }
                next = next + 1
            } else {
                break
            }
            if highestSent.lessThan(next) { highestSent = next }
        }
        if !out.isEmpty && timerDeadline == nil { timerDeadline = now + rto }
        return out
    }

    /// The retransmission timer (RFC 6298 §5.4-5.7): back off, go back to `una`, slow start.
    mutating func timerFired(now: Instant) -> [Segment] {
        guard let d = timerDeadline, now >= d else { return [] }
        if una == finalSeq { timerDeadline = nil; return [] }
        if next == una && peerWindow == 0 {
            // Zero-window probe: one byte (RFC 9293 §3.8.6.1), at intervals growing exponentially.
            rto = min(rto * 2, Self.maximumRTO)
            timerDeadline = now + rto
            let probe = Segment(seq: una, length: min(1, Int(una.distance(to: end))), fin: una == end && fin, isRetransmission: true)
            let probeEnd = una + UInt32(probe.length) + (probe.fin ? 1 : 0)
            if highestSent.lessThan(probeEnd) { highestSent = probeEnd } // its ack is valid
            return [probe]
        }
        timeouts += 1
        ssthresh = max(bytesInFlight / 2, 2 * mss)
        cwnd = mss
        recover = nil
        dupAcks = 0
        timing = nil
        next = una
        rto = min(rto * 2, Self.maximumRTO)
        timerDeadline = now + rto
        return segmentsToSend(now: now, limit: 1) // below `highestSent`: marked and counted as retransmissions
    }

    /// An ICMP "fragmentation needed" said the path takes smaller segments (RFC 1191 §6.4):
    /// lower the segment size and send again, at the new size, what was in flight (those
    /// segments were dropped on the way). Not a congestion signal: cwnd and ssthresh stay,
    /// as Linux's `tcp_simple_retransmit` keeps them. Ignored when not smaller.
    mutating func pathMTUReduced(segmentSize newMSS: Int) {
        let newMSS = max(newMSS, 64)
        guard newMSS < mss else { return }
        mss = newMSS
        timing = nil
        dupAcks = 0
        if next.greaterThan(una) { next = una } // below `highestSent`: counted as retransmissions
    }

    private mutating func retransmitSegment() -> Segment {
        retransmissions += 1
        timing = nil
        let remaining = Int(una.distance(to: end))
        let length = min(mss, remaining)
        return Segment(seq: una, length: length, fin: fin && length == remaining, isRetransmission: true)
    }

    /// RFC 6298 §2.2-2.3 with alpha 1/8, beta 1/4, K 4; clock granularity folded into the minimum.
    private mutating func sampleRTT(_ r: Double) {
        if let s = srtt {
            rttvar = 0.75 * rttvar + 0.25 * abs(s - r)
            srtt = 0.875 * s + 0.125 * r
        } else {
            srtt = r
            rttvar = r / 2
        }
        let value = UInt64(max(0, srtt! + 4 * rttvar))
        rto = min(max(value, Self.minimumRTO), Self.maximumRTO)
    }
}

extension Instant {
    static func + (a: Instant, ns: UInt64) -> Instant { Instant(nanoseconds: a.nanoseconds &+ ns) }
}
