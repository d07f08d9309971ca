import Media
import Testing

/// RTP headers and RTCP compound packets (RFC 3550 §5.1, §5.3.1, §6.4, §6.6, Appendix A.2):
/// byte fixtures, truncated and lying input, builders, and the continuity rewrite.
@Suite struct RTPPacketTests {
    /// An RTP packet: V=2, P=1, X=1, CC=1, M=1, PT=96, seq 0x1234, ts 0x01020304, SSRC 0xAABBCCDD,
    /// one CSRC, a one-word extension, 3 payload bytes and 2 padding bytes.
    static let full: [UInt8] = [
        0xB1, 0xE0, 0x12, 0x34, 0x01, 0x02, 0x03, 0x04, 0xAA, 0xBB, 0xCC, 0xDD,
        0x11, 0x22, 0x33, 0x44,
        0xBE, 0xDE, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04,
        0x65, 0x66, 0x67,
        0x00, 0x02,
    ]

    @Test func deconstructsAHeader() throws {
        let h = try RTPHeader(parsing: Self.full)
        #expect(h.padding && h.hasExtension && h.marker)
        #expect(h.csrcCount == 1 && h.csrcs(in: Self.full) == [0x1122_3344])
        #expect(h.payloadType == 96 && h.sequenceNumber == 0x1234 && h.timestamp == 0x0102_0304 && h.ssrc == 0xAABB_CCDD)
        #expect(h.headerLength == 24 && h.paddingLength == 2)
        #expect(h.payloadRange == 24..<27)
    }

    @Test func refusesBadVersionsAndLyingLengths() {
        var v1 = Self.full; v1[0] = 0x71
        #expect(throws: RTPError.badVersion) { try RTPHeader(parsing: v1) }
        for n in 0..<12 { #expect(throws: RTPError.truncated) { try RTPHeader(parsing: Array(Self.full.prefix(n))) } }
        #expect(throws: RTPError.truncated) { try RTPHeader(parsing: Array(Self.full.prefix(15))) } // CSRC cut
        #expect(throws: RTPError.badExtension) { try RTPHeader(parsing: Array(Self.full.prefix(18))) }
        var longExtension = Self.full; longExtension[19] = 9
        #expect(throws: RTPError.badExtension) { try RTPHeader(parsing: longExtension) }
        var zeroPadding = Self.full; zeroPadding[28] = 0
        #expect(throws: RTPError.badPadding) { try RTPHeader(parsing: zeroPadding) }
        var hugePadding = Self.full; hugePadding[28] = 6
        #expect(throws: RTPError.badPadding) { try RTPHeader(parsing: hugePadding) }
        #expect(throws: RTPError.badPadding) { try RTPHeader(parsing: Array(Self.full.prefix(24))) } // padding flag, no bytes
    }

    @Test func continuityRewritesSSRCSequenceAndTimestampWithWrap() throws {
        let start = RTPStreamStart(ssrc: 0x0102_0304, sequenceNumber: 65_535, timestamp: 0xFFFF_FFF0)
        let c = RTPContinuity(switchSequence: 0x1234, switchTimestamp: 0x0102_0304, to: start)
        var p = Self.full
        try c.apply(to: &p)
        let h = try RTPHeader(parsing: p)
        #expect(h.ssrc == 0x0102_0304 && h.sequenceNumber == 65_535 && h.timestamp == 0xFFFF_FFF0)
        #expect(Array(p[12...]) == Array(Self.full[12...]))
        #expect(c.sequenceNumber(0x1235) == 0 && c.timestamp(0x0102_0304 + 3000) == 3000 - 16)
        var bad: [UInt8] = [0x40, 0, 0, 0]
        #expect(throws: RTPError.self) { try c.apply(to: &bad) }
        #expect(bad == [0x40, 0, 0, 0])
    }

    /// A sender report with one report block, then an SDES: what a sender's compound looks like.
    static let senderReport: [UInt8] = [
        0x81, 200, 0x00, 0x0C, 0xB6, 0x60, 0x0B, 0x2F,
        0xE9, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, // NTP
        0x52, 0x3A, 0x0C, 0xA8, 0x00, 0x00, 0x00, 0x2D, 0x00, 0x00, 0x90, 0x00,
        0x01, 0x02, 0x03, 0x04, 0x40, 0xFF, 0xFF, 0xFE, 0x00, 0x01, 0x48, 0x8E, 0x00, 0x00, 0x00, 0x2A,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x81, 202, 0x00, 0x02, 0xB6, 0x60, 0x0B, 0x2F, 0x01, 0x01, 0x78, 0x00,
    ]

    @Test func deconstructsACompoundPacket() throws {
        let c = try RTCPCompound(parsing: Self.senderReport)
        #expect(c.items.map(\.offset) == [0, 52])
        guard case .senderReport(let sr) = c.packets[0] else { Issue.record("not SR"); return }
        #expect(sr.ssrc == 0xB660_0B2F && sr.ntpTimestamp == 0xE900_0001_8000_0000)
        #expect(sr.rtpTimestamp == 0x523A_0CA8 && sr.packetCount == 45 && sr.octetCount == 0x9000)
        let block = try #require(sr.reports.first)
        #expect(block.ssrc == 0x0102_0304 && block.fractionLost == 64 && block.fractionLostRatio == 0.25)
        #expect(block.cumulativeLost == -2 && block.extendedHighestSequence == 0x0001_488E && block.jitter == 42)
        #expect(c.packets[1] == .sourceDescription(chunkCount: 1))
        #expect(c.reportBlocks == [block])
    }

    @Test func refusesLyingLengths() {
        var tooLong = Self.senderReport; tooLong[3] = 0x40
        #expect(throws: RTPError.badRTCPLength) { try RTCPCompound(parsing: tooLong) }
        var tooManyBlocks = Self.senderReport; tooManyBlocks[0] = 0x82
        #expect(throws: RTPError.badRTCPCount) { try RTCPCompound(parsing: tooManyBlocks) }
        #expect(throws: RTPError.badRTCPLength) { try RTCPCompound(parsing: Self.senderReport + [0x81]) }
        var paddedFirst = Self.senderReport; paddedFirst[0] |= 0x20
        #expect(throws: RTPError.badRTCPPadding) { try RTCPCompound(parsing: paddedFirst) }
        var v1 = Self.senderReport; v1[52] = 0x41
        #expect(throws: RTPError.badVersion) { try RTCPCompound(parsing: v1) }
        let rtp: [UInt8] = [0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
        #expect(throws: RTPError.notRTCP) { try RTCPCompound(parsing: rtp) }
        #expect(throws: RTPError.truncated) { try RTCPCompound(parsing: [0x80]) }
        let byeWithLongReason: [UInt8] = [0x81, 203, 0, 2, 0, 0, 0, 1, 9, 0x61, 0x62, 0x63]
        #expect(throws: RTPError.badRTCPLength) { try RTCPCompound(parsing: byeWithLongReason) }
    }

    @Test func buildsAByeAndAReceiverReport() throws {
        let bye = RTCPBuilder.bye(sources: [0xB660_0B2F], reason: "migrated")
        #expect(bye == [0x81, 203, 0x00, 0x04, 0xB6, 0x60, 0x0B, 0x2F, 8] + Array("migrated".utf8) + [0, 0, 0])
        #expect(try RTCPCompound(parsing: bye).packets == [.bye(RTCPBye(sources: [0xB660_0B2F], reason: "migrated"))])
        #expect(RTCPBuilder.bye(sources: [1]) == [0x81, 203, 0, 1, 0, 0, 0, 1])

        let block = RTCPReportBlock(ssrc: 7, fractionLost: 128, cumulativeLost: -5, extendedHighestSequence: 70_000, jitter: 9)
        let rr = RTCPBuilder.receiverReport(ssrc: 3, reports: [block])
        #expect(rr.count == 32)
        #expect(try RTCPCompound(parsing: rr).packets == [.receiverReport(RTCPReceiverReport(ssrc: 3, reports: [block]))])
    }

    @Test func continuityRewritesSenderReports() throws {
        let c = RTPContinuity(switchSequence: 0, switchTimestamp: 0x523A_0000, to: RTPStreamStart(ssrc: 9, sequenceNumber: 0, timestamp: 100))
        var bytes = Self.senderReport
        try c.applyToSenderReports(in: &bytes)
        guard case .senderReport(let sr) = try RTCPCompound(parsing: bytes).packets[0] else { Issue.record("not SR"); return }
        #expect(sr.ssrc == 9 && sr.rtpTimestamp == 100 + 0x0CA8)
        #expect(Array(bytes[20...]) == Array(Self.senderReport[20...]))
    }

    @Test func sequenceComparisonWraps() {
        #expect(RTPSequence.isAfter(0, 65_535))
        #expect(!RTPSequence.isAfter(65_535, 0))
        #expect(!RTPSequence.isAfter(5, 5))
    }
}
