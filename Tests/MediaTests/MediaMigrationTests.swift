import Media
import Testing

/// The switch decision scripted with an injected clock (SMP draft §5.3-§5.4): requested ->
/// new player ready -> waiting for the GOP -> switched -> done, and the roll-backs.
@Suite struct MediaMigrationTests {
    static let start = RTPStreamStart(ssrc: 0xCAFE, sequenceNumber: 1000, timestamp: 5_000_000)

    static func packet(_ seq: UInt16, _ ts: UInt32, gop: Bool = false) -> MediaMigrationInput {
        .rtp(MediaPacketInfo(sequenceNumber: seq, timestamp: ts, isGOPStart: gop))
    }

    @Test func switchesAtTheFirstGOPAfterPlayAndCountsSkippedFrames() throws {
        let m = Driven(MediaMigration(requestedAt: .seconds(10)))
        #expect(m.handle(Self.packet(1, 0, gop: true), now: .seconds(10.1)) == [.route(.oldPlayer)])  // GOP before the new player
        #expect(m.handle(.newPlayerSetUp, now: .seconds(11)) == [.phaseChanged(.newPlayerReady)])
        #expect(m.handle(Self.packet(2, 3000), now: .seconds(11.1)) == [.route(.oldPlayer)])
        #expect(m.handle(.newPlayerPlaying(Self.start), now: .seconds(11.5)) == [.phaseChanged(.waitingForGOP)])
        // Three frames (four packets) go to the old player while waiting: skipped by the new one.
        for (seq, ts) in [(3, 6000), (4, 6000), (5, 9000), (6, 12000)] as [(UInt16, UInt32)] {
            #expect(m.handle(Self.packet(seq, ts), now: .seconds(11.6)) == [.route(.oldPlayer)])
        }
        let c = RTPContinuity(switchSequence: 7, switchTimestamp: 15000, to: Self.start)
        #expect(m.handle(Self.packet(7, 15000, gop: true), now: .seconds(12)) ==
            [.route(.newPlayer(c)), .phaseChanged(.switched), .endOldPlayer])
        #expect(c.sequenceNumber(7) == 1000 && c.timestamp(15000) == 5_000_000 && c.ssrc == 0xCAFE)
        // Everything after goes to the new player with the same rewrite, GOP or not.
        #expect(m.handle(Self.packet(8, 15000), now: .seconds(12)) == [.route(.newPlayer(c))])
        #expect(m.handle(Self.packet(9, 18000, gop: true), now: .seconds(12)) == [.route(.newPlayer(c))])
        #expect(m.handle(.tick, now: .seconds(12.5)) == [])
        let actions = m.handle(.oldPlayerEnded, now: .seconds(12.5))
        #expect(actions.first == .phaseChanged(.done))
        guard case .finished(let report) = actions.last else { Issue.record("no report"); return }
        #expect(report.phase == .done)
        #expect(report.phases.map(\.phase) == [.requested, .newPlayerReady, .waitingForGOP, .switched, .done])
        #expect(report.phases.map(\.seconds) == [0, 1, 1.5, 2, 2.5])
        #expect(report.switchedAtSequence == 7 && report.switchedAtTimestamp == 15000)
        #expect(report.framesSkipped == 3)
        #expect(report.reason == nil)
        // Finished: late inputs change nothing; packets keep going to the new player.
        #expect(m.handle(.oldPlayerEnded, now: .seconds(13)) == [])
        #expect(m.handle(.cancel(reason: "late"), now: .seconds(13)) == [])
        #expect(m.handle(Self.packet(10, 21000), now: .seconds(13)) == [.route(.newPlayer(c))])
    }

    @Test func rollsBackWhenTheNewPlayerNeverBecomesReady() {
        let m = Driven(MediaMigration(config: MediaMigrationConfig(readyTimeout: .seconds(5)), requestedAt: .seconds(0)))
        #expect(m.handle(.tick, now: .seconds(4.9)) == [])
        let actions = m.handle(.tick, now: .seconds(5))
        #expect(actions.first == .phaseChanged(.rolledBack))
        #expect(!actions.contains { if case .endNewPlayer = $0 { true } else { false } })  // there is none
        guard case .finished(let report) = actions.last else { Issue.record("no report"); return }
        #expect(report.phase == .rolledBack && report.reason?.contains("did not set up and play") == true)
        #expect(m.handle(Self.packet(1, 0, gop: true), now: .seconds(6)) == [.route(.oldPlayer)])
        #expect(m.handle(.newPlayerPlaying(Self.start), now: .seconds(6)) == [])
        #expect(m.handle(Self.packet(2, 3000, gop: true), now: .seconds(6)) == [.route(.oldPlayer)])
    }

    @Test func aPlayerThatSetUpButNeverPlaysIsEndedOnRollback() {
        let m = Driven(MediaMigration(config: MediaMigrationConfig(readyTimeout: .seconds(5)), requestedAt: .seconds(0)))
        _ = m.handle(.newPlayerSetUp, now: .seconds(1))
        let actions = m.handle(.tick, now: .seconds(5))
        #expect(actions.prefix(2) == [.endNewPlayer(reason: "the new player did not set up and play within 5.0s"), .phaseChanged(.rolledBack)])
    }

    @Test func rollsBackWhenNoGOPComes() {
        let m = Driven(MediaMigration(config: MediaMigrationConfig(gopTimeout: .seconds(3)), requestedAt: .seconds(0)))
        _ = m.handle(.newPlayerPlaying(Self.start), now: .seconds(1))
        #expect(m.phase == .waitingForGOP)
        #expect(m.handle(.tick, now: .seconds(3.9)) == [])
        let actions = m.handle(.tick, now: .seconds(4))
        #expect(actions.first == .endNewPlayer(reason: "no GOP started within 3.0s of PLAY"))
        #expect(m.phase == .rolledBack && m.continuity == nil)
    }

    @Test func cancelBeforeTheSwitchRollsBackAfterItIsIgnored() {
        let m = Driven(MediaMigration(requestedAt: .seconds(0)))
        _ = m.handle(.newPlayerPlaying(Self.start), now: .seconds(1))
        let actions = m.handle(.cancel(reason: "the new player's connection closed"), now: .seconds(2))
        #expect(actions.first == .endNewPlayer(reason: "the new player's connection closed"))
        #expect(m.report.reason == "the new player's connection closed")

        let n = Driven(MediaMigration(requestedAt: .seconds(0)))
        _ = n.handle(.newPlayerPlaying(Self.start), now: .seconds(1))
        _ = n.handle(Self.packet(1, 0, gop: true), now: .seconds(1))
        #expect(n.handle(.cancel(reason: "too late"), now: .seconds(2)) == [])
        #expect(n.phase == .switched)
    }

    @Test func theOldPlayerIsTakenAsEndedAfterTheGrace() {
        let m = Driven(MediaMigration(config: MediaMigrationConfig(oldPlayerGrace: .seconds(2)), requestedAt: .seconds(0)))
        _ = m.handle(.newPlayerPlaying(Self.start), now: .seconds(1))
        _ = m.handle(Self.packet(1, 0, gop: true), now: .seconds(1))
        #expect(m.handle(.tick, now: .seconds(2.9)) == [])
        #expect(m.handle(.tick, now: .seconds(3)).first == .phaseChanged(.done))
        #expect(m.isFinished)
    }

    /// Played against the real H.264 capture: the new player's first packet is the first packet
    /// of an IDR access unit, carries the promised seq/rtptime/SSRC, and the sequence continues.
    @Test func switchesOnARealStreamAtAnIDR() throws {
        let packets = try CapturedPackets.udp("h264-single.pcap").map(\.payload)
        let detector = Driven(GOPBoundaryDetector(codec: .h264))
        let m = Driven(MediaMigration(requestedAt: .seconds(0)))
        _ = m.handle(.newPlayerSetUp, now: .seconds(0))
        var toNew: [[UInt8]] = []
        for (i, var bytes) in packets.enumerated() {
            if i == 40 { _ = m.handle(.newPlayerPlaying(Self.start), now: .seconds(1)) }
            let header = try RTPHeader(parsing: bytes)
            let gop = detector.observe(packet: bytes)
            let actions = m.handle(.rtp(MediaPacketInfo(sequenceNumber: header.sequenceNumber, timestamp: header.timestamp, isGOPStart: gop)), now: .seconds(1))
            if case .route(.newPlayer(let c)) = actions.first {
                try c.apply(to: &bytes)
                toNew.append(bytes)
            }
        }
        let first = try RTPHeader(parsing: try #require(toNew.first))
        #expect(first.ssrc == Self.start.ssrc && first.sequenceNumber == 1000 && first.timestamp == 5_000_000)
        #expect(try toNew.first.map { bytes in bytes[try RTPHeader(parsing: bytes).payloadRange.lowerBound] & 0x1F } == 9)  // AUD of the IDR unit
        let sequences = try toNew.map { try RTPHeader(parsing: $0).sequenceNumber }
        #expect(sequences == Array(1000..<(1000 + UInt16(toNew.count))))
        #expect(m.report.framesSkipped > 0 && m.report.framesSkipped < 30)
        #expect(m.phase == .switched)
    }
}
