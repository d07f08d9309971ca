import Media
import Testing

/// Following a relayed RTSP control connection (RFC 2326 §10, §12.17, §12.37): the real session
/// of rtsp-session.pcap, then expiry, refusals and unmatched answers.
@Suite struct RTSPSessionTrackerTests {
    static func request(_ text: String) throws -> RTSPMessage { try RTSPMessageParser.parse(crlf(text)) }

    @Test func followsTheCapturedSession() throws {
        let requests = try RTSPSessionFixtureTests.messages(toServer: true).messages
        let answers = try RTSPSessionFixtureTests.messages(toServer: false).messages
        let tracker = Driven(RTSPSessionTracker(now: .seconds(0)))
        var events: [RTSPSessionEvent] = []
        for (i, request) in requests.enumerated() {
            events += tracker.handle(.request(request), now: .seconds(Double(i)))
            if i < answers.count { events += tracker.handle(.answer(answers[i]), now: .seconds(Double(i))) }
        }
        #expect(events.count == 4)
        guard case .described(let sdp, let base) = events[0] else { Issue.record("not described: \(events)"); return }
        #expect(base == "rtsp://127.0.0.1:47554/test/" && sdp.video?.codecName == "H264")
        guard case .setUp(let setup, let id) = events[1] else { Issue.record("not set up"); return }
        #expect(setup.controlURL == "rtsp://127.0.0.1:47554/test/stream=0" && setup.transport.serverPort != nil)
        #expect(id == tracker.sessionID)
        guard case .playing(let info) = events[2] else { Issue.record("not playing"); return }
        #expect(info.first?.seq != nil)
        #expect(events[3] == .ended(reason: "TEARDOWN"))
        #expect(tracker.state == .ended && tracker.codecName == "H264" && tracker.url == "rtsp://127.0.0.1:47554/test")
        #expect(tracker.streams.count == 1 && tracker.timeout == 60)
    }

    @Test func expiresWithoutActivityAndStaysEnded() throws {
        let tracker = Driven(RTSPSessionTracker(now: .seconds(0)))
        _ = tracker.handle(.request(try Self.request("SETUP rtsp://h/s/t=0 RTSP/1.0\nCSeq: 1\nTransport: RTP/AVP;unicast;client_port=5000-5001\n\n")), now: .seconds(0))
        let answer = try Self.request("RTSP/1.0 200 OK\nCSeq: 1\nTransport: RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001\nSession: abc;timeout=10\n\n")
        #expect(tracker.handle(.answer(answer), now: .seconds(0)).count == 1)
        #expect(tracker.state == .ready && tracker.timeout == 10)
        #expect(tracker.handle(.tick, now: .seconds(9)) == [])
        #expect(tracker.handle(.mediaActivity, now: .seconds(9)) == [])   // RTCP keeps it alive
        #expect(tracker.handle(.tick, now: .seconds(18.9)) == [])
        #expect(tracker.handle(.tick, now: .seconds(19)) == [.ended(reason: "no activity for 10s")])
        #expect(tracker.handle(.answer(answer), now: .seconds(20)) == [])
        #expect(tracker.state == .ended)
    }

    @Test func refusalsUnmatchedAnswersAndBadDescriptions() throws {
        let tracker = Driven(RTSPSessionTracker(now: .seconds(0)))
        _ = tracker.handle(.request(try Self.request("DESCRIBE rtsp://h/s RTSP/1.0\nCSeq: 2\n\n")), now: .seconds(0))
        #expect(tracker.handle(.answer(try Self.request("RTSP/1.0 200 OK\nCSeq: 9\n\n")), now: .seconds(0)) == [.unmatchedAnswer(cseq: 9)])
        let bad = crlf("RTSP/1.0 200 OK\nCSeq: 2\nContent-Length: 5\n\n") + Array("x=0\r\n".utf8)
        guard case .badDescription? = tracker.handle(.answer(try RTSPMessageParser.parse(bad)), now: .seconds(0)).first else {
            Issue.record("a bad description was accepted"); return
        }
        #expect(tracker.description == nil)
        _ = tracker.handle(.request(try Self.request("SETUP rtsp://h/s/t=0 RTSP/1.0\nCSeq: 3\n\n")), now: .seconds(0))
        #expect(tracker.handle(.answer(try Self.request("RTSP/1.0 461 Unsupported Transport\nCSeq: 3\n\n")), now: .seconds(0))
            == [.refused(method: "SETUP", status: 461)])
        #expect(tracker.state == .initial)
        // Nothing to expire before a session exists.
        #expect(tracker.handle(.tick, now: .seconds(1_000)) == [])
    }

    @Test func remembersABoundedNumberOfRequests() throws {
        let tracker = Driven(RTSPSessionTracker(now: .seconds(0)))
        for cseq in 1...100 {
            _ = tracker.handle(.request(try Self.request("OPTIONS * RTSP/1.0\nCSeq: \(cseq)\n\n")), now: .seconds(0))
        }
        #expect(tracker.handle(.answer(try Self.request("RTSP/1.0 200 OK\nCSeq: 1\n\n")), now: .seconds(0)) == [.unmatchedAnswer(cseq: 1)])
        #expect(tracker.handle(.answer(try Self.request("RTSP/1.0 200 OK\nCSeq: 100\n\n")), now: .seconds(0)) == [])
    }
}
