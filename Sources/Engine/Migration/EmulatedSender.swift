import Wire

/// The proxy's own TCP sender toward a device during a migration (TSMP draft §4.3.2; DESIGN
/// §6 step 4): it delivers the cached bytes `[una, end)` of the server's stream (and the
/// server's FIN, when the cache holds one) with slow start and congestion avoidance (RFC 5681
/// §3.1), NewReno fast retransmit and recovery (RFC 6582) that, when SACK was negotiated with
/// the device, resends only the holes of its scoreboard (RFC 2018, RFC 6675), a retransmission
/// timer (RFC 6298) and a persist timer for a closed window (RFC 9293 §3.8.6.1). It decides
/// *what* to send and when; the engine builds the packets.
///
/// Invariants: `una <= next <= highestSent <= end (+1 for FIN)`; bytes in flight `next - una`
/// never exceed `min(cwnd, peer window)` except a single zero-window probe; the timer runs
/// exactly while something is unacknowledged (as the persist timer while the window is 0);
/// the peer window is only taken from an ack that is not older than the one that last set it
/// (SND.WL1/SND.WL2); a closed window never counts as loss (cwnd and ssthresh stay); bytes on
/// the SACK scoreboard are never resent in recovery.
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
    private(set) var peerWindow: Int
    /// SND.WL1 and SND.WL2 (RFC 9293 §3.10.7.4): the device's sequence number and ack of the
    /// segment that last set `peerWindow`; nil until the first ack (the window given at
    /// `init` came from the handshake).
    private var windowSetBy: (seq: SeqNumber, ack: SeqNumber)?
    private(set) var dupAcks = 0
    /// NewReno: recovery ends when `una` passes this (RFC 6582 §3.2 "recover").
    private var recover: SeqNumber?
    /// SACK was negotiated with the device: its blocks feed `scoreboard`.
    let sackEnabled: Bool
    private(set) var scoreboard = SackScoreboard()
    /// RFC 6675 HighRxt: in this recovery, retransmitted up to here.
    private var highRetransmitted: SeqNumber?
    /// Zero-window probes sent since the window was last seen open (persist backoff).
    private(set) var probes = 0
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

    /// Loss is detected after this many duplicate acks, or this many segments' worth of bytes
    /// SACKed above `una` (RFC 5681 §3.2, RFC 6675 §2 DupThresh).
    static let duplicateThreshold = 3

    init(from start: SeqNumber, to end: SeqNumber, fin: Bool, mss: Int, peerWindow: Int, sack: Bool) {
        una = start
        next = start
        highestSent = start
        self.end = end
        self.fin = fin
        self.mss = max(mss, 64)
        // RFC 6928: initial window of 10 segments.
        cwnd = 10 * self.mss
        self.peerWindow = peerWindow
        sackEnabled = sack
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

    /// Processes an acknowledgement from the device: `ack` and `sack` in the server's sequence
    /// space, `window` in bytes, `segmentSeq` the segment's own sequence number (the device's
    /// space; it orders the device's segments for the window rule). Returns segments to
    /// retransmit now (fast retransmit, recovery).
    /// `carriesData`: the segment carries data or FIN, so it is no duplicate ack (RFC 5681 §2).
    mutating func acknowledge(_ ack: SeqNumber, window: Int, segmentSeq: SeqNumber, now: Instant,
                              carriesData: Bool = false, sack: [SackBlock] = []) -> [Segment] {
        guard ack.lessThanOrEqual(highestSent) else { return [] } // acks what was never sent: ignore
        guard ack.greaterThanOrEqual(una) else { return [] }     // an old duplicate (RFC 9293 §3.10.7.4)
        let previousWindow = peerWindow
        updateWindow(window, seq: segmentSeq, ack: ack)
        let newlySacked = sackEnabled ? scoreboard.add(sack, una: ack, highestSent: highestSent) : 0
        if ack.greaterThan(una) {
            let acked = Int(una.distance(to: ack))
            if let t = timing, ack.greaterThan(t.seq) {
                sampleRTT(Double(now.nanoseconds &- t.sentAt.nanoseconds))
                timing = nil
            }
            una = ack
            scoreboard.acknowledge(ack)
            if next.lessThan(ack) { next = ack } // after a timeout: the receiver had more than `next`
            dupAcks = 0
            var out: [Segment] = []
            if let r = recover {
                if ack.greaterThanOrEqual(r) {
                    cwnd = ssthresh            // full ack: leave recovery (RFC 6582 §3.2 step 3)
                    recover = nil
                    highRetransmitted = nil
                } else {
                    // Partial ack: retransmit the next hole, deflate (RFC 6582 §3.2 step 3).
                    if let again = nextRetransmission() { out.append(again) }
                    cwnd = max(cwnd - acked + mss, mss)
                }
            } else if cwnd < ssthresh {
                cwnd += min(acked, mss)        // slow start (RFC 5681 §3.1, with ABC L=1)
            } else {
                cwnd += max(1, mss * mss / cwnd) // congestion avoidance
            }
            if recover == nil, let again = enterRecoveryIfLost(now: now) { out.append(again) }
            timerDeadline = una == next ? (peerWindow == 0 ? timerDeadline : nil) : now + rto
            return out
        }
        // Duplicate ack (RFC 5681 §2): nothing new acknowledged while data is outstanding, no
        // data, and the same window as the last ack: a window update (a slow reader opening its
        // window) is none. With SACK, an ack that SACKs new bytes is one (RFC 6675 §2).
        guard next.greaterThan(una), !carriesData, window == previousWindow || newlySacked > 0 else { return [] }
        dupAcks += 1
        if recover == nil {
            return enterRecoveryIfLost(now: now).map { [$0] } ?? []
        }
        cwnd += mss // inflate during recovery (RFC 6582 §3.2 step 4)
        // RFC 6675 §5 (C): with SACK, each ack in recovery may resend the next hole while the
        // bytes still in the network (in flight less SACKed) are below cwnd.
        guard sackEnabled, bytesInFlight - scoreboard.bytes < cwnd, let again = nextRetransmission() else { return [] }
        return [again]
    }

    /// Enters fast retransmit and recovery when loss is detected: the third duplicate ack
    /// (RFC 5681 §3.2), or, with SACK, more than two segments' worth of bytes SACKed above
    /// `una` (RFC 6675 §4 IsLost). Returns the first retransmission.
    private mutating func enterRecoveryIfLost(now: Instant) -> Segment? {
        let lost = dupAcks >= Self.duplicateThreshold
            || (sackEnabled && scoreboard.bytes > (Self.duplicateThreshold - 1) * mss)
        guard lost, next.greaterThan(una) else { return nil }
        ssthresh = max(bytesInFlight / 2, 2 * mss)
        cwnd = ssthresh + Self.duplicateThreshold * mss
        recover = highestSent
        highRetransmitted = nil
        timerDeadline = now + rto
        return nextRetransmission()
    }

    /// The window rule of RFC 9293 §3.10.7.4: the window is taken from a segment newer than the
    /// one that last set it (SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK),
    /// so a reordered older ack neither shrinks nor grows it. A window that opens ends the
    /// persist backoff; with nothing in flight the timer restarts at the next send.
    private mutating func updateWindow(_ window: Int, seq: SeqNumber, ack: SeqNumber) {
        if let wl = windowSetBy, !(wl.seq.lessThan(seq) || (wl.seq == seq && wl.ack.lessThanOrEqual(ack))) { return }
        windowSetBy = (seq, ack)
        let wasClosed = peerWindow == 0
        peerWindow = max(window, 0)
        if wasClosed && peerWindow > 0 {
            probes = 0
            if next == una { timerDeadline = nil }
        }
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
    /// While the peer's window is zero it is the persist timer instead (`probeWindow`).
    mutating func timerFired(now: Instant) -> [Segment] {
        guard let d = timerDeadline, now >= d else { return [] }
        if una == finalSeq { timerDeadline = nil; return [] }
        if peerWindow == 0 { return [probeWindow(now: now)] }
        timeouts += 1
        ssthresh = max(bytesInFlight / 2, 2 * mss)
        cwnd = mss
        recover = nil
        highRetransmitted = nil
        scoreboard.clear() // RFC 2018 §8: the receiver may have reneged
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

    /// The persist timer fired (RFC 9293 §3.8.6.1): one byte at `una` probes the closed window,
    /// the next probe twice as late (up to 60 s). A probe without an answer is flow control, not
    /// loss: cwnd, ssthresh and the RTO stay (RFC 5681 §3.1 and RFC 6298 §5 answer lost
    /// segments). Bytes sent past `una` go again once the window opens (the receiver may have
    /// dropped them when it closed its window, RFC 9293 §3.8.6).
    private mutating func probeWindow(now: Instant) -> Segment {
        probes += 1
        timing = nil
        next = una
        timerDeadline = now + min(rto << UInt64(min(probes, 16)), Self.maximumRTO)
        let probe = Segment(seq: una, length: min(1, Int(una.distance(to: end))), fin: una == end && fin, isRetransmission: true)
        let probeEnd = una + UInt32(probe.length) + (probe.fin ? 1 : 0)
        if highestSent.lessThan(probeEnd) { highestSent = probeEnd } // its ack is valid
        return probe
    }

    /// The next segment to resend in recovery: the first hole at or above HighRxt that lies
    /// below a SACKed block (RFC 6675 §4 NextSeg rule 1), never SACKed bytes; without SACK
    /// information, the segment at `una` if it was not resent yet in this recovery (RFC 6582).
    private mutating func nextRetransmission() -> Segment? {
        let from = SeqNumber.max(una, highRetransmitted ?? una)
        let seq: SeqNumber, length: Int
        if let hole = scoreboard.firstHole(from: from, maxLength: mss) {
            (seq, length) = hole
        } else if from == una, next.greaterThan(una) {
            (seq, length) = (una, min(mss, Int(una.distance(to: end))))
        } else {
            return nil
        }
        retransmissions += 1
        timing = nil
        let segmentEnd = seq + UInt32(length)
        let withFin = fin && segmentEnd == end
        highRetransmitted = segmentEnd + (withFin ? 1 : 0)
        return Segment(seq: seq, length: length, fin: withFin, isRetransmission: true)
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
