@testable import Engine
import PacketIO
import Testing
import Wire

/// The proxy's own TCP sender (DESIGN §6 step 4) alone: RFC 5681 slow start and congestion
/// avoidance, RFC 6582 NewReno, RFC 6298 timer with Karn's rule, RFC 9293 §3.8.6.1 zero-window
/// probes. Times are an injected clock; sequence numbers start just below 2^32 so every test
/// also crosses the wrap.
@Suite("Emulated sender")
struct EmulatedSenderTests {
    let start = SeqNumber(0xFFFF_F000)
    let mss = 1000
    let t0 = Instant(nanoseconds: 10_000_000_000)
    /// The device's own sequence number on its acks (it sends no data in these tests).
    let deviceSeq = SeqNumber(5000)

    func at(ms: UInt64) -> Instant { Instant(nanoseconds: t0.nanoseconds + ms * 1_000_000) }
    func seq(_ offset: Int) -> SeqNumber { start + UInt32(offset) }

    func sender(bytes: Int = 100_000, fin: Bool = false, window: Int = 1 << 20) -> EmulatedSender {
        EmulatedSender(from: start, to: start + UInt32(bytes), fin: fin, mss: mss, peerWindow: window, sack: false)
    }

    /// Sends the initial window and checks it: 10 segments of one MSS (RFC 6928).
    func initialWindow(_ s: inout EmulatedSender, sourceLocation: SourceLocation = #_sourceLocation) {
        let out = s.segmentsToSend(now: t0, limit: 100)
        #expect(out == (0..<10).map { EmulatedSender.Segment(seq: seq($0 * mss), length: mss, fin: false, isRetransmission: false) },
                sourceLocation: sourceLocation)
        #expect(s.bytesInFlight == 10 * mss, sourceLocation: sourceLocation)
        #expect(s.timerDeadline == at(ms: 1000), sourceLocation: sourceLocation)
    }

    @Test("slow start: initial window 10 segments, cwnd grows by at most one MSS per ack (RFC 5681 §3.1)")
    func slowStart() {
        var s = sender()
        initialWindow(&s)
        #expect(s.segmentsToSend(now: t0, limit: 100).isEmpty) // the window is full
        // One segment acknowledged: cwnd 11 MSS, 9 in flight -> two new segments.
        #expect(s.acknowledge(seq(1000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 50)).isEmpty)
        #expect(s.cwnd == 11 * mss)
        #expect(s.segmentsToSend(now: at(ms: 50), limit: 100).map(\.seq) == [seq(10_000), seq(11_000)])
        // Two segments in one (delayed) ack still add one MSS (ABC, L = 1).
        _ = s.acknowledge(seq(3000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 60))
        #expect(s.cwnd == 12 * mss)
        #expect(s.segmentsToSend(now: at(ms: 60), limit: 100).count == 3)
        #expect(s.bytesInFlight == 12 * mss)
        // The first sample (50 ms): SRTT 50, RTTVAR 25, RTO = 150 ms raised to the 200 ms minimum.
        #expect(s.rto == 200_000_000)
        #expect(s.retransmissions == 0 && s.timeouts == 0)
    }

    @Test("never more in flight than the peer's window; no silly segment while data is in flight")
    func peerWindowBounds() {
        var s = sender(window: 2500)
        let out = s.segmentsToSend(now: t0, limit: 100)
        #expect(out.map(\.length) == [1000, 1000])
        // The window opens by what was acknowledged: still 2500 in total.
        _ = s.acknowledge(seq(1000), window: 2500, segmentSeq: deviceSeq, now: at(ms: 10))
        #expect(s.segmentsToSend(now: at(ms: 10), limit: 100).map(\.length) == [1000])
        #expect(s.bytesInFlight == 2000)
        // With nothing in flight a short window is used whole.
        _ = s.acknowledge(seq(3000), window: 700, segmentSeq: deviceSeq, now: at(ms: 20))
        #expect(s.segmentsToSend(now: at(ms: 20), limit: 100).map(\.length) == [700])
    }

    @Test("congestion avoidance after recovery: cwnd = ssthresh, then + MSS*MSS/cwnd per ack")
    func congestionAvoidance() {
        var s = sender()
        initialWindow(&s)
        for _ in 0..<2 { #expect(s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 30)).isEmpty) }
        let again = s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 30))
        #expect(again == [EmulatedSender.Segment(seq: start, length: mss, fin: false, isRetransmission: true)])
        #expect(s.ssthresh == 5 * mss)
        #expect(s.cwnd == 8 * mss)
        // The full ack ends recovery with cwnd = ssthresh (RFC 6582 §3.2 step 3).
        _ = s.acknowledge(seq(10_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 60))
        #expect(s.cwnd == 5 * mss)
        #expect(s.segmentsToSend(now: at(ms: 60), limit: 100).count == 5)
        _ = s.acknowledge(seq(11_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 90))
        #expect(s.cwnd == 5000 + 1000 * 1000 / 5000)
        _ = s.acknowledge(seq(12_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 91))
        #expect(s.cwnd == 5200 + 1000 * 1000 / 5200)
        #expect(s.retransmissions == 1 && s.timeouts == 0)
    }

    @Test("NewReno: fast retransmit on the third duplicate ack, inflation, partial ack retransmits the next hole")
    func newRenoPartialAcks() {
        var s = sender()
        initialWindow(&s)
        // Segments 0 and 3 are lost; 1, 2, 4.. arrive: duplicate acks for 0.
        #expect(s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 40)).isEmpty)
        #expect(s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 41)).isEmpty)
        #expect(s.dupAcks == 2)
        #expect(s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 42)).map(\.seq) == [start])
        #expect(s.cwnd == 8 * mss)
        #expect(s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 43)).isEmpty)
        #expect(s.cwnd == 9 * mss) // inflated by one MSS per further duplicate
        // The retransmission fills hole 0: the ack stops at hole 3 (partial, below recover).
        let partial = s.acknowledge(seq(3000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 80))
        #expect(partial == [EmulatedSender.Segment(seq: seq(3000), length: mss, fin: false, isRetransmission: true)])
        #expect(s.cwnd == 9000 - 3000 + 1000) // deflated by what was acknowledged, plus one MSS
        // The full ack leaves recovery.
        #expect(s.acknowledge(seq(10_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 120)).isEmpty)
        #expect(s.cwnd == s.ssthresh && s.ssthresh == 5 * mss)
        #expect(s.retransmissions == 2 && s.timeouts == 0)
        // Three duplicates now start a new recovery.
        _ = s.segmentsToSend(now: at(ms: 120), limit: 100)
        for _ in 0..<2 { _ = s.acknowledge(seq(10_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 130)) }
        #expect(s.acknowledge(seq(10_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 131)).map(\.seq) == [seq(10_000)])
    }

    @Test("a segment carrying data is not a duplicate ack (RFC 5681 §2), even with the same ack")
    func dataIsNotDuplicateAck() {
        var s = sender()
        initialWindow(&s)
        for _ in 0..<5 { #expect(s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 40), carriesData: true).isEmpty) }
        #expect(s.dupAcks == 0 && s.retransmissions == 0)
        for _ in 0..<2 { _ = s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 41)) }
        #expect(s.acknowledge(start, window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 42)).count == 1)
    }

    @Test("RTO: go back to una in slow start with one MSS, timer backed off exponentially up to 60 s (RFC 6298 §5.5)")
    func retransmissionTimeoutBackoff() {
        var s = sender()
        initialWindow(&s)
        #expect(s.timerFired(now: at(ms: 999)).isEmpty)
        let first = s.timerFired(now: at(ms: 1000))
        #expect(first == [EmulatedSender.Segment(seq: start, length: mss, fin: false, isRetransmission: true)])
        #expect(s.timeouts == 1 && s.retransmissions == 1)
        #expect(s.cwnd == mss && s.ssthresh == 5 * mss)
        #expect(s.rto == 2_000_000_000 && s.timerDeadline == at(ms: 3000))
        #expect(s.timerFired(now: at(ms: 2999)).isEmpty)
        #expect(s.timerFired(now: at(ms: 3000)).map(\.seq) == [start])
        #expect(s.rto == 4_000_000_000 && s.timerDeadline == at(ms: 7000))
        var t: UInt64 = 7000
        for _ in 0..<10 {
            _ = s.timerFired(now: at(ms: t))
            t += s.rto / 1_000_000
        }
        #expect(s.rto == EmulatedSender.maximumRTO)
        #expect(s.timeouts == 12)
    }

    @Test("after an RTO, acks for segments sent before it are accepted (RFC 9293 SND.MAX): no stall")
    func acksBeyondGoBackPoint() {
        var s = sender()
        initialWindow(&s)
        // Only segment 0 was lost; the timer resends it.
        _ = s.timerFired(now: at(ms: 1000))
        #expect(s.next == seq(1000))
        // The receiver had 1..9 buffered: it acknowledges all ten.
        _ = s.acknowledge(seq(10_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 1050))
        #expect(s.una == seq(10_000))
        #expect(s.next == seq(10_000))
        // Slow start from one MSS: two new segments (never sent before: not retransmissions).
        let more = s.segmentsToSend(now: at(ms: 1050), limit: 100)
        #expect(more == [EmulatedSender.Segment(seq: seq(10_000), length: mss, fin: false, isRetransmission: false),
                         EmulatedSender.Segment(seq: seq(11_000), length: mss, fin: false, isRetransmission: false)])
    }

    @Test("after an RTO, resending segments sent before it counts them as retransmissions")
    func goBackNSegmentsAreRetransmissions() {
        var s = sender()
        initialWindow(&s)
        _ = s.timerFired(now: at(ms: 1000))
        // Segment 0 arrives, segment 1 was lost too: the ack covers only segment 0.
        _ = s.acknowledge(seq(1000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 1050))
        let resent = s.segmentsToSend(now: at(ms: 1050), limit: 100)
        #expect(resent.map(\.seq) == [seq(1000), seq(2000)])
        #expect(resent.allSatisfy { $0.isRetransmission })
        #expect(s.retransmissions == 3)
    }

    @Test("Karn's rule: an ack of a retransmitted segment gives no RTT sample (RFC 6298 §3)")
    func karn() {
        var s = sender(bytes: 3 * mss)
        #expect(s.segmentsToSend(now: t0, limit: 100).count == 3)
        _ = s.timerFired(now: at(ms: 1000))
        #expect(s.rto == 2_000_000_000)
        // The ack comes 10 ms after the retransmission (or 1010 ms after the original): ambiguous.
        _ = s.acknowledge(seq(3000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 1010))
        #expect(s.isComplete)
        #expect(s.rto == 2_000_000_000) // still backed off, not 200 ms from a 10 ms "sample"

        // A clean exchange afterwards does sample.
        var c = sender(bytes: 3 * mss)
        _ = c.segmentsToSend(now: t0, limit: 100)
        _ = c.acknowledge(seq(3000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 400))
        #expect(c.rto == 1_200_000_000) // 400 + 4 * 200
    }

    @Test("zero window: the persist timer sends one-byte probes with exponential backoff (RFC 9293 §3.8.6.1)")
    func zeroWindowProbe() {
        var s = sender(window: 0)
        #expect(s.segmentsToSend(now: t0, limit: 100).isEmpty)
        #expect(s.timerDeadline == at(ms: 1000))
        #expect(s.timerFired(now: at(ms: 1000)) == [EmulatedSender.Segment(seq: start, length: 1, fin: false, isRetransmission: true)])
        #expect(s.next == start && s.timeouts == 0)
        // Still closed: the probe's ack changes nothing; the next probe comes twice as late.
        _ = s.acknowledge(start, window: 0, segmentSeq: deviceSeq, now: at(ms: 1010))
        #expect(s.timerDeadline == at(ms: 3000))
        #expect(s.timerFired(now: at(ms: 2999)).isEmpty)
        #expect(s.timerFired(now: at(ms: 3000)).map(\.length) == [1])
        #expect(s.timerDeadline == at(ms: 7000))
        // The receiver takes the probe's byte and opens its window: sending resumes after it.
        _ = s.acknowledge(seq(1), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 3010))
        #expect(s.una == seq(1))
        let out = s.segmentsToSend(now: at(ms: 3010), limit: 100)
        #expect(out.first == EmulatedSender.Segment(seq: seq(1), length: mss, fin: false, isRetransmission: false))
        #expect(out.count == 10)
    }

    @Test("FIN after the data: on the last segment, or alone; complete once the FIN is acknowledged")
    func finDelivery() {
        var s = sender(bytes: 2500, fin: true)
        let out = s.segmentsToSend(now: t0, limit: 100)
        #expect(out.map(\.length) == [1000, 1000, 500])
        #expect(out.map(\.fin) == [false, false, true])
        #expect(s.finalSeq == seq(2501))
        _ = s.acknowledge(seq(2500), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 10))
        #expect(!s.isComplete)
        _ = s.acknowledge(seq(2501), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 11))
        #expect(s.isComplete && s.timerDeadline == nil)

        var empty = EmulatedSender(from: start, to: start, fin: true, mss: mss, peerWindow: 1 << 20, sack: false)
        #expect(empty.segmentsToSend(now: t0, limit: 100) == [EmulatedSender.Segment(seq: start, length: 0, fin: true, isRetransmission: false)])
    }

    @Test("bytes cached after the sender started (late in-flight data, the server's FIN) are delivered too")
    func extend() {
        var s = sender(bytes: 2000)
        #expect(s.segmentsToSend(now: t0, limit: 100).count == 2)
        _ = s.acknowledge(seq(2000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 10))
        #expect(s.isComplete)
        s.extend(to: seq(3500), fin: true)
        #expect(!s.isComplete)
        let out = s.segmentsToSend(now: at(ms: 10), limit: 100)
        #expect(out == [EmulatedSender.Segment(seq: seq(2000), length: 1000, fin: false, isRetransmission: false),
                        EmulatedSender.Segment(seq: seq(3000), length: 500, fin: true, isRetransmission: false)])
        _ = s.acknowledge(seq(3501), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 20))
        #expect(s.isComplete)
    }
}
