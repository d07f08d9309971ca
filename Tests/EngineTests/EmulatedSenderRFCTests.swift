@testable import Engine
import PacketIO
import Testing
import Wire

/// The emulated sender against the corners a real network shows (issue 13 item 8): window
/// updates that are no duplicate acks (RFC 5681 §2), reordered acks and the SND.WL1/SND.WL2
/// window rule (RFC 9293 §3.10.7.4), a closed window that is no loss (RFC 9293 §3.8.6.1), and
/// SACK-driven recovery that resends only holes (RFC 2018, RFC 6675). Injected clock; sequence
/// numbers cross the wrap.
@Suite("Emulated sender: real-network corners")
struct EmulatedSenderRFCTests {
    let start = SeqNumber(0xFFFF_F000)
    let mss = 1000
    let t0 = Instant(nanoseconds: 10_000_000_000)
    /// The device's own sequence number (its space; it also crosses the wrap when it sends).
    let deviceSeq = SeqNumber(0xFFFF_FF00)

    func at(ms: UInt64) -> Instant { Instant(nanoseconds: t0.nanoseconds + ms * 1_000_000) }
    func seq(_ offset: Int) -> SeqNumber { start + UInt32(offset) }
    func block(_ from: Int, _ to: Int) -> SackBlock { SackBlock(seq(from), seq(to)) }
    /// The scoreboard's first hole from offset `from`: [offset, length].
    func hole(_ b: SackScoreboard, from: Int) -> [Int]? {
        b.firstHole(from: seq(from), maxLength: mss).map { [Int(start.distance(to: $0.seq)), $0.length] }
    }

    func sender(bytes: Int = 100_000, window: Int = 1 << 20, sack: Bool = false) -> EmulatedSender {
        var s = EmulatedSender(from: start, to: start + UInt32(bytes), fin: false, mss: mss, peerWindow: window, sack: sack)
        #expect(s.segmentsToSend(now: t0, limit: 100).count == 10) // initial window, 10 segments
        return s
    }

    @Test("a window update (same ack, another window) is no duplicate ack: no fast retransmit toward a slow reader")
    func windowUpdateIsNoDuplicateAck() {
        var s = sender(window: 20_000)
        // A slow reader opens its window step by step; the ack stays at una.
        for (i, w) in [21_000, 22_000, 23_000, 24_000, 25_000].enumerated() {
            #expect(s.acknowledge(start, window: w, segmentSeq: deviceSeq, now: at(ms: 40 + UInt64(i))).isEmpty)
        }
        #expect(s.dupAcks == 0 && s.retransmissions == 0)
        #expect(s.cwnd == 10 * mss && s.ssthresh == Int.max)
        #expect(s.peerWindow == 25_000)
        // Three acks with the same window are duplicates: fast retransmit still works.
        for _ in 0..<2 { #expect(s.acknowledge(start, window: 25_000, segmentSeq: deviceSeq, now: at(ms: 50)).isEmpty) }
        #expect(s.acknowledge(start, window: 25_000, segmentSeq: deviceSeq, now: at(ms: 51)).map(\.seq) == [start])
    }

    @Test("a reordered older ack neither shrinks nor grows the window (SND.WL1/SND.WL2, RFC 9293 §3.10.7.4)")
    func staleAckKeepsWindow() {
        var s = sender()
        // The newer ack (ack 4000, window 16000) arrives before the older one (ack 2000, window 8000).
        _ = s.acknowledge(seq(4000), window: 16_000, segmentSeq: deviceSeq, now: at(ms: 40))
        _ = s.acknowledge(seq(2000), window: 8000, segmentSeq: deviceSeq, now: at(ms: 41))
        #expect(s.peerWindow == 16_000 && s.una == seq(4000))
        // The device sent 300 bytes: its segment at deviceSeq (window 0) overtaken by its next
        // pure ack at deviceSeq + 300 (window 12000), both acking 6000.
        _ = s.acknowledge(seq(6000), window: 12_000, segmentSeq: deviceSeq + 300, now: at(ms: 42))
        _ = s.acknowledge(seq(6000), window: 0, segmentSeq: deviceSeq, now: at(ms: 43), carriesData: true)
        #expect(s.peerWindow == 12_000)
        // Nor grows: an older segment announcing a larger window.
        _ = s.acknowledge(seq(6000), window: 64_000, segmentSeq: deviceSeq + 100, now: at(ms: 44), carriesData: true)
        #expect(s.peerWindow == 12_000)
        // A newer segment (same seq, higher ack; then a higher seq) does set it.
        _ = s.acknowledge(seq(7000), window: 9000, segmentSeq: deviceSeq + 300, now: at(ms: 45))
        #expect(s.peerWindow == 9000)
        _ = s.acknowledge(seq(7000), window: 30_000, segmentSeq: deviceSeq + 400, now: at(ms: 46), carriesData: true)
        #expect(s.peerWindow == 30_000)
    }

    @Test("the window closes with data in flight: the timer probes it and keeps cwnd, ssthresh and the RTO (RFC 9293 §3.8.6.1)")
    func zeroWindowIsNoLoss() {
        var s = sender()
        // Five segments acknowledged (RTT 50 ms: RTO 200 ms), the window shrunk to zero with
        // five still out.
        _ = s.acknowledge(seq(5000), window: 0, segmentSeq: deviceSeq, now: at(ms: 50))
        let cwnd = s.cwnd, rto = s.rto
        #expect(cwnd == 11 * mss && rto == 200_000_000)
        #expect(s.segmentsToSend(now: at(ms: 50), limit: 100).isEmpty)
        #expect(s.timerDeadline == at(ms: 250))
        // The timer: a one-byte probe at una, not a timeout.
        #expect(s.timerFired(now: at(ms: 250)) == [EmulatedSender.Segment(seq: seq(5000), length: 1, fin: false, isRetransmission: true)])
        #expect(s.timeouts == 0 && s.cwnd == cwnd && s.ssthresh == Int.max && s.rto == rto)
        #expect(s.timerDeadline == at(ms: 650)) // backed off: 2 x 200 ms
        // The probe gets no answer: another, twice as late again; still no loss.
        #expect(s.timerFired(now: at(ms: 650)).map(\.length) == [1])
        #expect(s.timerDeadline == at(ms: 1450))
        #expect(s.timeouts == 0 && s.cwnd == cwnd && s.ssthresh == Int.max && s.rto == rto)
        // The window opens (the device kept nothing past una): the whole cwnd goes from una.
        _ = s.acknowledge(seq(5000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 700))
        #expect(s.probes == 0)
        let out = s.segmentsToSend(now: at(ms: 700), limit: 100)
        #expect(out.first?.seq == seq(5000) && out.count == 11)
        #expect(s.timerDeadline == at(ms: 900)) // the RTO again, not the persist backoff
    }

    @Test("a real timeout with an open window still collapses cwnd (RFC 5681 §3.1)")
    func openWindowTimeoutIsLoss() {
        var s = sender()
        _ = s.acknowledge(seq(5000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 50))
        #expect(s.timerFired(now: at(ms: 250)).map(\.length) == [mss])
        #expect(s.timeouts == 1 && s.cwnd == mss && s.ssthresh == 2500)
    }

    @Test("SACK recovery resends only the holes, each once, never SACKed bytes (RFC 6675 §5)")
    func sackRecoveryResendsHoles() {
        var s = sender(sack: true)
        // Segments 1 and 3 are lost; 0 is acknowledged, then 2, 4, 5, 6, 7 arrive (SACKed).
        _ = s.acknowledge(seq(1000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 40))
        var resent: [EmulatedSender.Segment] = []
        let reports: [[SackBlock]] = [
            [block(2000, 3000)],
            [block(4000, 5000), block(2000, 3000)],
            [block(4000, 6000), block(2000, 3000)], // 3 segments SACKed above una: loss (IsLost)
            [block(4000, 7000), block(2000, 3000)],
            [block(4000, 8000), block(2000, 3000)],
        ]
        for (i, sack) in reports.enumerated() {
            resent += s.acknowledge(seq(1000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 41 + UInt64(i)), sack: sack)
        }
        #expect(resent.map(\.seq) == [seq(1000), seq(3000)])
        #expect(resent.allSatisfy { $0.length == mss && $0.isRetransmission })
        #expect(s.scoreboard.bytes == 5000)
        // The resent segment 1 arrives: a partial ack to 3000. Segment 3 was resent already.
        #expect(s.acknowledge(seq(3000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 80),
                              sack: [block(4000, 8000)]).isEmpty)
        #expect(s.acknowledge(seq(10_000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 90)).isEmpty)
        #expect(s.retransmissions == 2 && s.timeouts == 0)
        #expect(s.cwnd == s.ssthresh && s.scoreboard.isEmpty)
    }

    @Test("without negotiated SACK the device's blocks are ignored (NewReno)")
    func sackNotNegotiated() {
        var s = sender(sack: false)
        _ = s.acknowledge(seq(1000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 40), sack: [block(2000, 6000)])
        #expect(s.scoreboard.isEmpty)
        #expect(s.acknowledge(seq(1000), window: 1 << 20, segmentSeq: deviceSeq, now: at(ms: 41), sack: [block(2000, 7000)]).isEmpty)
    }

    @Test("scoreboard: blocks clipped to (una, SND.MAX], merged, bounded; holes stop at SACKed bytes")
    func scoreboard() {
        var b = SackScoreboard()
        #expect(b.add([block(5000, 6000), block(1000, 2000), SackBlock(start - 500, seq(500)), block(9000, 20_000)],
                      una: seq(0), highestSent: seq(10_000)) == 1000 + 1000 + 500 + 1000)
        #expect(b.blocks == [block(0, 500), block(1000, 2000), block(5000, 6000), block(9000, 10_000)])
        #expect(b.add([block(1500, 5200), block(3000, 2000)], una: seq(0), highestSent: seq(10_000)) == 3000)
        #expect(b.blocks == [block(0, 500), block(1000, 6000), block(9000, 10_000)])
        #expect(hole(b, from: 0) == [500, 500])
        #expect(hole(b, from: 1000) == [6000, 1000])
        #expect(hole(b, from: 9500) == nil) // above the highest SACKed byte
        b.acknowledge(seq(1200))
        #expect(b.blocks == [block(1200, 6000), block(9000, 10_000)] && b.bytes == 5800)
        for i in 0..<100 { b.add([block(20 * i + 10_001, 20 * i + 10_010)], una: seq(1200), highestSent: seq(20_000)) }
        #expect(b.blocks.count == SackScoreboard.capacity && b.blocks.first == block(1200, 6000))
    }
}
