import Media
import Testing

/// GOP boundaries on real packetized streams (scripts/capture-media-fixtures): x264 with a GOP
/// of 30 frames through rtph264pay with and without aggregation, avenc_mpeg4 with a GOP of 30
/// (ffmpeg's encoder) through rtpmp4vpay, and the H.264 stream of a real RTSP session. The
/// packets flagged are exactly the first packets of access units 0, 30, 60, ... (the captures
/// hold the first 80-odd of the 90 frames sent: the pipeline's last frames are not captured).
@Suite struct GOPFixtureTests {
    struct Stream: CustomTestStringConvertible, Sendable {
        let file: String
        let codec: VideoCodec
        let port: UInt16?
        var testDescription: String { file }
    }

    /// One access unit: its packets' payload first bytes, in order.
    struct Observation {
        var accessUnits: [[(payload: [UInt8], flagged: Bool)]] = []
    }

    static let streams = [
        Stream(file: "h264-aggregate.pcap", codec: .h264, port: 47000),
        Stream(file: "h264-single.pcap", codec: .h264, port: 47002),
        Stream(file: "h264-sps-first.pcap", codec: .h264, port: 47006),
        Stream(file: "mpeg4.pcap", codec: .mpeg4Visual, port: 47004),
    ]

    static func observe(_ packets: [[UInt8]], codec: VideoCodec) throws -> (Observation, GOPBoundaryDetector) {
        var detector = GOPBoundaryDetector(codec: codec)
        var observation = Observation()
        var lastTimestamp: UInt32?
        for bytes in packets {
            let header = try RTPHeader(parsing: bytes)
            let flagged = detector.observe(packet: bytes)
            if header.timestamp != lastTimestamp { observation.accessUnits.append([]); lastTimestamp = header.timestamp }
            observation.accessUnits[observation.accessUnits.count - 1].append((Array(bytes[header.payloadRange]), flagged))
        }
        return (observation, detector)
    }

    @Test(arguments: streams)
    func flagsTheFirstPacketOfEveryThirtiethFrame(_ stream: Stream) throws {
        let packets = try CapturedPackets.udp(stream.file).filter { $0.destinationPort == stream.port }.map(\.payload)
        let (observation, detector) = try Self.observe(packets, codec: stream.codec)
        let units = observation.accessUnits.count
        #expect(units > 60 && units <= 90)
        let flaggedUnits = observation.accessUnits.indices.filter { observation.accessUnits[$0].contains { $0.flagged } }
        #expect(flaggedUnits == Array(stride(from: 0, to: units, by: 30)))
        for unit in flaggedUnits {
            #expect(observation.accessUnits[unit].map(\.flagged) == [true] + Array(repeating: false, count: observation.accessUnits[unit].count - 1),
                    "unit \(unit): only its first packet")
        }
        #expect(detector.gopStarts == flaggedUnits.count && detector.accessUnits == units && detector.unconfirmedStarts == 0)
    }

    /// The fixtures hold what the tests claim: STAP-A and FU-A; SPS, PPS and the IDR slice in
    /// separate packets of one timestamp; I-VOPs after VOS/VOL headers and fragmented.
    @Test func fixturesCoverEveryPacketization() throws {
        let aggregate = try CapturedPackets.udp("h264-aggregate.pcap").map(\.payload)
        let (a, _) = try Self.observe(aggregate, codec: .h264)
        try #require(a.accessUnits.count > 31)
        #expect(a.accessUnits[0].first.map { $0.payload[0] & 0x1F } == 24)  // STAP-A with AUD, SPS, PPS...
        #expect(a.accessUnits[0].dropFirst().allSatisfy { $0.payload[0] & 0x1F == 28 })  // ...then the IDR in FU-A
        #expect(a.accessUnits[0].count >= 3)

        let single = try CapturedPackets.udp("h264-single.pcap").map(\.payload)
        let (s, _) = try Self.observe(single, codec: .h264)
        try #require(s.accessUnits.count > 31)
        let types = s.accessUnits[30].map { $0.payload[0] & 0x1F }
        #expect(types.prefix(3) == [9, 7, 8])   // AUD, SPS, PPS, each in its own packet
        #expect(types.contains(28) || types.contains(5))
        #expect(s.accessUnits[31].map { $0.payload[0] & 0x1F }.contains(1))  // a P slice as a single NAL unit

        // Without delimiters the SPS packet opens the IDR unit, and it is the one flagged.
        let spsFirst = try CapturedPackets.udp("h264-sps-first.pcap").map(\.payload)
        let (f, _) = try Self.observe(spsFirst, codec: .h264)
        let flagged = f.accessUnits.compactMap { unit in unit.first { $0.flagged } }
        #expect(flagged.count >= 3)
        #expect(flagged.allSatisfy { $0.payload.first.map { $0 & 0x1F } == 7 })

        let mpeg4 = try CapturedPackets.udp("mpeg4.pcap").map(\.payload)
        let (m, _) = try Self.observe(mpeg4, codec: .mpeg4Visual)
        try #require(m.accessUnits.count > 31)
        #expect(Array(m.accessUnits[30][0].payload.prefix(4)) == [0, 0, 1, 0xB0])
        #expect(m.accessUnits[30].count >= 2)
        #expect(Array(m.accessUnits[31][0].payload.prefix(4)) == [0, 0, 1, 0xB6])
    }

    /// The RTSP session's stream (server to player over UDP, joined mid-stream at PLAY): GOP starts
    /// every 30 frames from the first IDR on, and only there.
    @Test func rtspSessionStreamHasAGOPEveryThirtyFrames() throws {
        let datagrams = try CapturedPackets.udp("rtsp-session.pcap")
        let rtp = datagrams.filter { (47100...47199).contains($0.destinationPort) && $0.destinationPort % 2 == 0 }.map(\.payload)
        #expect(rtp.count > 40)
        let (observation, detector) = try Self.observe(rtp, codec: .h264)
        let flagged = observation.accessUnits.indices.filter { observation.accessUnits[$0].contains { $0.flagged } }
        let first = try #require(flagged.first)
        #expect(flagged == Array(stride(from: first, to: observation.accessUnits.count, by: 30)))
        #expect(detector.unconfirmedStarts == 0)
    }
}
