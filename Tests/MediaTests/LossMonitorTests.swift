import Media
import Testing

/// Network-triggered migration (SMP draft §5.2): fraction lost from RTCP receiver reports held
/// at or above a threshold for a hold time gives one alert, then quiet until it recovers.
@Suite struct LossMonitorTests {
    static func report(_ fraction: UInt8, lost: Int32 = 0) -> RTCPReportBlock {
        RTCPReportBlock(ssrc: 1, fractionLost: fraction, cumulativeLost: lost, extendedHighestSequence: 0, jitter: 7)
    }

    @Test func alertsOnceWhenLossHoldsThenRecovers() {
        let m = Driven(LossMonitor(config: LossMonitorConfig(threshold: 0.1, hold: .seconds(3))))
        #expect(m.handle(report: Self.report(10), now: .seconds(0)).isEmpty)       // 3.9%: below
        #expect(m.handle(report: Self.report(64), now: .seconds(1)).isEmpty)       // 25% since 1s
        #expect(m.handle(report: Self.report(80), now: .seconds(2)).isEmpty)
        #expect(m.tick(now: .seconds(3.9)).isEmpty)
        let alert = m.tick(now: .seconds(4))
        #expect(alert == [.qualityAlert(QualityAlert(fractionLost: 80.0 / 256, peakFractionLost: 80.0 / 256,
                                                     since: .seconds(1), cumulativeLost: 0, jitter: 7))])
        // Quiet while the loss lasts.
        #expect(m.handle(report: Self.report(128, lost: 50), now: .seconds(5)).isEmpty)
        #expect(m.tick(now: .seconds(100)).isEmpty)
        #expect(m.alerts == 1 && m.isAlerted)
        #expect(m.handle(report: Self.report(0), now: .seconds(101)) == [.recovered(fractionLost: 0)])
        // A new episode alerts again.
        _ = m.handle(report: Self.report(255), now: .seconds(110))
        #expect(m.handle(report: Self.report(255), now: .seconds(113)).count == 1)
        #expect(m.alerts == 2)
    }

    @Test func aDipBelowTheThresholdRestartsTheHold() {
        let m = Driven(LossMonitor(config: LossMonitorConfig(threshold: 0.1, hold: .seconds(3))))
        _ = m.handle(report: Self.report(64), now: .seconds(0))
        _ = m.handle(report: Self.report(5), now: .seconds(2))
        #expect(m.handle(report: Self.report(64), now: .seconds(3)).isEmpty)
        #expect(m.tick(now: .seconds(5.9)).isEmpty)
        #expect(m.tick(now: .seconds(6)).count == 1)
    }

    @Test func hysteresisKeepsItAlertedBetweenTheThresholds() {
        let m = Driven(LossMonitor(config: LossMonitorConfig(threshold: 0.2, hold: .seconds(0), recoveryThreshold: 0.05)))
        #expect(m.handle(report: Self.report(128), now: .seconds(0)).count == 1)   // hold 0: at once
        #expect(m.handle(report: Self.report(26), now: .seconds(1)).isEmpty)       // 10%: still alerted
        #expect(m.isAlerted)
        #expect(m.handle(report: Self.report(2), now: .seconds(2)) == [.recovered(fractionLost: 2.0 / 256)])
        #expect(m.fractionLost == 2.0 / 256)
    }

    @Test func readsRealReceiverReportBlocks() throws {
        let m = Driven(LossMonitor(config: LossMonitorConfig(threshold: 0.2, hold: .seconds(1))))
        let rr = RTCPBuilder.receiverReport(ssrc: 5, reports: [Self.report(128, lost: 40)])
        let block = try #require(try RTCPCompound(parsing: rr).reportBlocks.first)
        _ = m.handle(report: block, now: .seconds(0))
        guard case .qualityAlert(let alert)? = m.handle(report: block, now: .seconds(1)).first else { Issue.record("no alert"); return }
        #expect(alert.fractionLost == 0.5 && alert.cumulativeLost == 40)
    }
}

/// Times and durations from any number (they may come from command-line options) never trap.
@Suite struct MediaTimeTests {
    @Test func conversionsSaturate() {
        #expect(MediaTime.seconds(-1).nanoseconds == 0)
        #expect(MediaTime.seconds(.nan).nanoseconds == 0)
        #expect(MediaTime.seconds(.infinity).nanoseconds == .max)
        #expect(MediaDuration.seconds(1e12).nanoseconds == .max)
        #expect(MediaDuration.seconds(1.5).nanoseconds == 1_500_000_000)
        #expect(MediaTime(nanoseconds: .max - 1).adding(.seconds(1)).nanoseconds == .max)
        #expect(MediaTime.seconds(2).seconds(since: .seconds(1)) == 1)
        #expect(MediaTime.seconds(1).seconds(since: .seconds(2)) == 0)
    }
}
