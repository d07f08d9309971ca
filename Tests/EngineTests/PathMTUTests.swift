@testable import Engine
import Testing
import TestSupport
import Wire

/// What the engine learns from "fragmentation needed" (RFC 1191) and how an MTU maps between
/// families (RFC 7915), as pure functions.
@Suite("Path MTU")
struct PathMTUTests {
    @Test("only ever lowered; a report of 0 (pre-RFC 1191 router) uses the plateau below the quoted length; below 68 ignored")
    func lowering() {
        #expect(LearnedPathMTU.lowered(nil, reported: 1400, quotedLength: 1500, family: .ipv4) == 1400)
        #expect(LearnedPathMTU.lowered(1280, reported: 1400, quotedLength: 1500, family: .ipv4) == 1280)
        #expect(LearnedPathMTU.lowered(nil, reported: 0, quotedLength: 1500, family: .ipv4) == 1492)
        #expect(LearnedPathMTU.lowered(nil, reported: 0, quotedLength: 1492, family: .ipv4) == 1006)
        #expect(LearnedPathMTU.lowered(1400, reported: 40, quotedLength: 1500, family: .ipv4) == 1400)
        #expect(LearnedPathMTU.lowered(nil, reported: 1000, quotedLength: 1500, family: .ipv6) == nil) // below IPv6's 1280
    }

    @Test("segment limit toward the device: its MSS, within a learned path MTU less the server's timestamp option (NOPs for a device without timestamps take the same room), never below the floor's")
    func segmentLimitTowardDevice() {
        var flow = Flow(id: FlowID(1), device: endpoint("10.1.0.2:40000"), original: endpoint("10.2.0.2:80"),
                        server: endpoint("10.2.0.2:80"), natPort: 1024, state: .established,
                        created: Instant(nanoseconds: 1), lastActivity: Instant(nanoseconds: 1))
        #expect(flow.segmentLimitTowardDevice == nil)
        flow.deviceMSS = 1000
        #expect(flow.segmentLimitTowardDevice == 1000)
        flow.pathMTU = LearnedPathMTU(towardServer: 576, towardDevice: 1400)
        #expect(flow.segmentLimitTowardDevice == 1000)
        flow.deviceMSS = nil
        #expect(flow.segmentLimitTowardDevice == 1360)
        flow.deviceSyn.timestamps = true
        flow.serverSyn.timestamps = true
        #expect(flow.segmentLimitTowardDevice == 1348)
        flow.deviceLacksTimestamps = true
        #expect(flow.segmentLimitTowardDevice == 1348)
        flow.pathMTU = LearnedPathMTU(towardServer: nil, towardDevice: 100)
        #expect(flow.segmentLimitTowardDevice == 500)
    }

    @Test("segment payloads never go below the floor's; MTUs keep the payload room across families")
    func sizes() {
        #expect(LearnedPathMTU.segmentPayload(mtu: 1400, family: .ipv4, optionBytes: 12) == 1348)
        #expect(LearnedPathMTU.segmentPayload(mtu: 68, family: .ipv4, optionBytes: 0) == 512)
        #expect(LearnedPathMTU.translate(1400, from: .ipv4, to: .ipv4) == 1400)
        #expect(LearnedPathMTU.translate(1400, from: .ipv4, to: .ipv6) == 1420)
        #expect(LearnedPathMTU.translate(1300, from: .ipv6, to: .ipv4) == 1280)
        #expect(LearnedPathMTU.translate(0, from: .ipv4, to: .ipv6) == 0)
    }

    @Test("the rate limiter refills with the injected clock and never exceeds its burst")
    func limiter() {
        var l = ICMPRateLimiter(perSecond: 100, burst: 5)
        let t0 = Instant(nanoseconds: 1_000_000_000)
        #expect((0..<8).filter { _ in l.allow(now: t0) }.count == 5)
        let t1 = Instant(nanoseconds: 1_020_000_000) // 20 ms: 2 tokens
        #expect((0..<8).filter { _ in l.allow(now: t1) }.count == 2)
        let t2 = Instant(nanoseconds: 61_000_000_000) // a minute later: the burst, no more
        #expect((0..<8).filter { _ in l.allow(now: t2) }.count == 5)
    }
}
