import Media
import Testing

/// Property tests: random and mutated bytes never trap any parser, and a message split at any
/// point parses the same. Seeds are fixed; a failure prints the seed to rerun with.
@Suite struct NeverTrapTests {
    static let iterations = 3_000

    @Test func randomBytesNeverTrapAnyParser() {
        var rng = SplitMix(seed: 0x5EED_0001)
        for i in 0..<Self.iterations {
            let length = Int(rng.next() % 200)
            var bytes = rng.bytes(length)
            if i % 3 == 0, !bytes.isEmpty { bytes[0] = 0x80 | bytes[0] & 0x3F }  // version 2 half the time
            exercise(bytes)
        }
    }

    @Test func mutatedRealMessagesNeverTrap() {
        var rng = SplitMix(seed: 0x5EED_0002)
        let seeds = [RTSPParserTests.setupAnswer, RTSPParserTests.setupRequest, RTPPacketTests.full,
                     RTPPacketTests.senderReport, SessionDescriptionTests.gstreamerH264]
        for _ in 0..<Self.iterations {
            var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0..<(1 + rng.next() % 4) where !bytes.isEmpty {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: at)
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                }
            }
            exercise(bytes)
        }
    }

    @Test func splittingAMessageAnywhereParsesTheSame() throws {
        let whole = RTSPParserTests.setupAnswer + RTSPParserTests.setupRequest
        for split in 0...whole.count {
            var parser = RTSPMessageParser()
            var out: [RTSPMessage] = []
            parser.append(whole[..<split])
            while case .message(let m)? = try parser.next() { out.append(m) }
            parser.append(whole[split...])
            while case .message(let m)? = try parser.next() { out.append(m) }
            #expect(out.flatMap { $0.serialized() } == whole, "split at \(split)")
        }
    }

    /// Every parser and every accessor over `bytes`.
    func exercise(_ bytes: [UInt8]) {
        var parser = RTSPMessageParser(limits: RTSPLimits(maxHeaderBytes: 512, maxHeaderCount: 8, maxBodyBytes: 64))
        parser.append(bytes)
        var rounds = 0
        while rounds < 100, let item = try? parser.next() {
            rounds += 1
            if case .message(let m) = item {
                _ = (m.cseq, try? m.session(), try? m.transports(), try? m.rtpInfo(), m.contentBase, m.serialized())
                if let specs = try? m.transports() { for t in specs { _ = (t.clientPort, t.serverPort, t.interleaved, t.ssrc) } }
            }
        }
        if let text = String(validating: bytes, as: UTF8.self) {
            _ = try? RTSPTransport.parseList(text)
            _ = try? RTSPSessionHeader(parsing: text)
            _ = try? RTSPRTPInfo.parseList(text)
            _ = RTSPURL(text)?.resolving(text)
        }
        if let sdp = try? SessionDescription(parsing: bytes) {
            for m in sdp.media { _ = (m.codecName, m.clockRate, m.h264, m.mpeg4, m.control, m.controlURL(base: "rtsp://h/")) }
        }
        if let h = try? RTPHeader(parsing: bytes) {
            #expect(h.payloadRange.lowerBound >= 12 && h.payloadRange.upperBound <= bytes.count)
            _ = h.csrcs(in: bytes)
        }
        _ = try? RTCPCompound(parsing: bytes).reportBlocks
        for codec in VideoCodec.allCases {
            var d = GOPBoundaryDetector(codec: codec)
            _ = d.observe(packet: bytes)
            if bytes.count > 12 {
                _ = bytes.withUnsafeBytes { buf in
                    d.observe(try! RTPHeader(parsing: [0x80, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1]), payload: buf)
                }
            }
        }
        var copy = bytes
        try? RTPContinuity(switchSequence: 1, switchTimestamp: 2, to: RTPStreamStart(ssrc: 3, sequenceNumber: 4, timestamp: 5)).apply(to: &copy)
        try? RTPContinuity(switchSequence: 1, switchTimestamp: 2, to: RTPStreamStart(ssrc: 3, sequenceNumber: 4, timestamp: 5)).applyToSenderReports(in: &copy)
    }
}
