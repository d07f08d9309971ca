import Media
import Testing

/// The proxy's own answers to a second player (SMP draft §5.3; RFC 2326 §10.2, §10.4, §10.5),
/// built for the requests ffmpeg really sent (rtsp-session.pcap), byte for byte.
@Suite struct RTSPAnswerTests {
    static func requests() throws -> [RTSPMessage] { try RTSPSessionFixtureTests.messages(toServer: true).messages }

    @Test func answersDescribeFromTheCache() throws {
        let describe = try #require(try Self.requests().first { $0.method == "DESCRIBE" })
        let sdp = try SessionDescription(parsing: SessionDescriptionTests.gstreamerH264)
        let answer = RTSPMessage.describeAnswer(to: describe, description: sdp, contentBase: "rtsp://127.0.0.1:47554/test/")
        let expected = crlf("""
            RTSP/1.0 200 OK
            CSeq: 2
            Content-Type: application/sdp
            Content-Base: rtsp://127.0.0.1:47554/test/
            Content-Length: \(SessionDescriptionTests.gstreamerH264.count)


            """) + SessionDescriptionTests.gstreamerH264
        #expect(answer.serialized() == expected)
        #expect(try RTSPMessageParser.parse(answer.serialized()).body == SessionDescriptionTests.gstreamerH264)
    }

    @Test func answersSetupAndPlaySoThePlayerExpectsTheContinuity() throws {
        let requests = try Self.requests()
        let setup = try #require(requests.first { $0.method == "SETUP" })
        let play = try #require(requests.first { $0.method == "PLAY" })
        let session = RTSPSessionHeader(id: "tsmp-7", timeout: 60)
        let setupAnswer = RTSPMessage.setupAnswer(to: setup, serverPorts: RTSPPortRange(40000, 40001), ssrc: 0xCAFE_F00D, session: session)
        let clientPorts = try #require(try setup.transports()?.first?.clientPort)
        #expect(setupAnswer.serialized() == crlf("""
            RTSP/1.0 200 OK
            CSeq: 3
            Transport: RTP/AVP/UDP;unicast;client_port=\(clientPorts);server_port=40000-40001;ssrc=CAFEF00D
            Session: tsmp-7;timeout=60


            """))
        let control = try #require(setup.uri)
        let playAnswer = RTSPMessage.playAnswer(to: play, session: session,
                                                rtpInfo: [RTSPRTPInfo(url: control, seq: 1000, rtptime: 5_000_000)])
        #expect(playAnswer.serialized() == crlf("""
            RTSP/1.0 200 OK
            CSeq: 4
            RTP-Info: url=\(control);seq=1000;rtptime=5000000
            Range: npt=now-
            Session: tsmp-7;timeout=60


            """))
        // What the migration's continuity rewrite is built from.
        let start = try RTPStreamStart(setupAnswer: setupAnswer, playAnswer: playAnswer, controlURL: control)
        #expect(start == RTPStreamStart(ssrc: 0xCAFE_F00D, sequenceNumber: 1000, timestamp: 5_000_000))
    }

    @Test func refusesTransportsTheRelayCannotCarry() throws {
        let tcp = try RTSPMessageParser.parse(crlf("SETUP rtsp://h/s/trackID=1 RTSP/1.0\nCSeq: 3\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\n\n"))
        let session = RTSPSessionHeader(id: "x")
        #expect(RTSPMessage.setupAnswer(to: tcp, serverPorts: RTSPPortRange(1, 2), ssrc: 1, session: session).status == 461)
        let multicast = try RTSPMessageParser.parse(crlf("SETUP rtsp://h/s RTSP/1.0\nCSeq: 3\nTransport: RTP/AVP;multicast;client_port=5000-5001\n\n"))
        #expect(RTSPMessage.setupAnswer(to: multicast, serverPorts: RTSPPortRange(1, 2), ssrc: 1, session: session).status == 461)
        let none = try RTSPMessageParser.parse(crlf("SETUP rtsp://h/s RTSP/1.0\nCSeq: 3\n\n"))
        let answer = RTSPMessage.setupAnswer(to: none, serverPorts: RTSPPortRange(1, 2), ssrc: 1, session: session)
        #expect(answer.status == 400 && answer.cseq == 3)
        // A second offer that fits is taken.
        let both = try RTSPMessageParser.parse(crlf("SETUP rtsp://h/s RTSP/1.0\nCSeq: 3\nTransport: RTP/AVP/TCP;interleaved=0-1,RTP/AVP;unicast;client_port=6000-6001\n\n"))
        let fitting = RTSPMessage.setupAnswer(to: both, serverPorts: RTSPPortRange(7000, 7001), ssrc: 1, session: session)
        #expect(try fitting.transports()?.first?.clientPort == RTSPPortRange(6000, 6001))
    }
}
