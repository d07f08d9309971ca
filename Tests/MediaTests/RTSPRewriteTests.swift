import Media
import Testing

/// What the proxy changes in relayed RTSP messages (RFC 2326 §12.11, §12.33, §12.37, §12.39):
/// only the rewritten line differs, byte for byte.
@Suite struct RTSPRewriteTests {
    @Test func rewritesClientPortsAndDestinationOnly() throws {
        var m = try RTSPMessageParser.parse(RTSPParserTests.setupRequest)
        try m.rewriteTransports { t in
            t.clientPort = RTSPPortRange(40000, 40001)
            t.destination = "192.0.2.1"
        }
        let expected = crlf("""
            SETUP rtsp://127.0.0.1:47554/test/stream=0 RTSP/1.0
            Transport: RTP/AVP/UDP;unicast;client_port=40000-40001;destination=192.0.2.1
            CSeq: 3
            User-Agent: Lavf59.27.100


            """)
        #expect(m.serialized() == expected)
    }

    @Test func rewritesAnAnswersPortsSourceAndSession() throws {
        var m = try RTSPMessageParser.parse(RTSPParserTests.setupAnswer)
        try m.rewriteTransports { t in
            t.clientPort = RTSPPortRange(5000, 5001)
            t.serverPort = RTSPPortRange(30000, 30001)
            t.source = "198.51.100.7"
        }
        try m.setSessionID("proxy-1")
        let expected = crlf("""
            RTSP/1.0 200 OK
            CSeq: 3
            Transport: RTP/AVP;unicast;client_port=5000-5001;server_port=30000-30001;ssrc=B6600B2F;mode="PLAY";source=198.51.100.7
            Server: GStreamer RTSP server
            Session: proxy-1;timeout=60
            Date: Thu, 03 Dec 2026 12:36:39 GMT


            """)
        #expect(m.serialized() == expected)
    }

    @Test func rewritesTheRequestURLAndContentBase() throws {
        var request = try RTSPMessageParser.parse(crlf("DESCRIBE rtsp://proxy:8554/test RTSP/1.0\nAccept: application/sdp\nCSeq: 2\n\n"))
        request.setRequestURI("rtsp://10.1.0.5:554/test")
        #expect(request.serialized() == crlf("DESCRIBE rtsp://10.1.0.5:554/test RTSP/1.0\nAccept: application/sdp\nCSeq: 2\n\n"))

        let body = Array("v=0\r\n".utf8)
        var answer = try RTSPMessageParser.parse(crlf("RTSP/1.0 200 OK\nCSeq: 2\nContent-Base: rtsp://10.1.0.5:554/test/\nContent-Length: 5\n\n") + body)
        answer.setContentBase("rtsp://proxy:8554/test/")
        #expect(answer.serialized() == crlf("RTSP/1.0 200 OK\nCSeq: 2\nContent-Base: rtsp://proxy:8554/test/\nContent-Length: 5\n\n") + body)
        // A response has no request URL: nothing changes.
        let before = answer.serialized()
        answer.setRequestURI("rtsp://elsewhere/")
        #expect(answer.serialized() == before)
    }

    @Test func replacingABodyKeepsContentLengthTrue() throws {
        var m = try RTSPMessageParser.parse(crlf("RTSP/1.0 200 OK\nCSeq: 2\nContent-Length: 5\n\n") + Array("v=0\r\n".utf8))
        m.setBody(Array("v=0\r\ns=proxy\r\n".utf8))
        #expect(m.serialized() == crlf("RTSP/1.0 200 OK\nCSeq: 2\nContent-Length: 14\n\nv=0\ns=proxy\n"))
    }

    @Test func rtpInfoRoundTripsAndIsRewritten() throws {
        var m = try RTSPMessageParser.parse(crlf("RTSP/1.0 200 OK\nCSeq: 4\nRTP-Info: url=rtsp://127.0.0.1:47554/test/stream=0;seq=18574;rtptime=1379499688\nSession: z\n\n"))
        let info = try #require(try m.rtpInfo())
        #expect(info == [RTSPRTPInfo(url: "rtsp://127.0.0.1:47554/test/stream=0", seq: 18574, rtptime: 1_379_499_688)])
        m.setRTPInfo([RTSPRTPInfo(url: "rtsp://proxy/test/stream=0", seq: 1, rtptime: 2)])
        #expect(m.serialized() == crlf("RTSP/1.0 200 OK\nCSeq: 4\nRTP-Info: url=rtsp://proxy/test/stream=0;seq=1;rtptime=2\nSession: z\n\n"))
        let two = try RTSPRTPInfo.parseList("url=rtsp://h/a,b;seq=1, url=rtsp://h/c;rtptime=9")
        #expect(two.map(\.url) == ["rtsp://h/a,b", "rtsp://h/c"])
    }

    @Test func rewrittenValuesCannotInjectHeaders() throws {
        var m = try RTSPMessageParser.parse(RTSPParserTests.setupRequest)
        try m.rewriteTransports { $0.destination = "1.2.3.4\r\nX-Evil: 1;client_port=9" }
        m.headers["User-Agent"] = "a\r\nX-Evil: 2"
        m.setRequestURI("rtsp://h/x RTSP/1.0\r\nX-Evil: 3")
        let again = try RTSPMessageParser.parse(m.serialized())
        #expect(again.headers["X-Evil"] == nil)
        #expect(again.headers.count == 3)
        #expect(try again.transports()?.first?.clientPort == RTSPPortRange(47130, 47131))
        var answer = try RTSPMessageParser.parse(RTSPParserTests.setupAnswer)
        #expect(throws: RTSPHeaderError.self) { try answer.setSessionID("a;b\r\nX-Evil: 4") }
        #expect(answer.serialized() == RTSPParserTests.setupAnswer)
    }

    @Test func setSessionIDOnAMessageWithoutSessionChangesNothing() throws {
        var m = try RTSPMessageParser.parse(RTSPParserTests.setupRequest)
        #expect(try m.setSessionID("x") == false)
        #expect(m.serialized() == RTSPParserTests.setupRequest)
    }

    @Test func urlsParseAndResolveControlURLs() throws {
        let base = try #require(RTSPURL("rtsp://127.0.0.1:47554/test/"))
        #expect(base.host == "127.0.0.1" && base.port == 47554 && base.path == "/test/")
        #expect(base.resolving("stream=0") == "rtsp://127.0.0.1:47554/test/stream=0")
        #expect(base.resolving("*") == "rtsp://127.0.0.1:47554/test/")
        #expect(base.resolving("/other") == "rtsp://127.0.0.1:47554/other")
        #expect(base.resolving("rtsp://x/y") == "rtsp://x/y")
        #expect(RTSPURL("rtsp://h/test")?.resolving("trackID=1") == "rtsp://h/test/trackID=1")
        #expect(RTSPURL("rtsp://user@[2001:db8::1]:8554/s")?.host == "[2001:db8::1]")
        #expect(RTSPURL("rtsp://h/s")?.effectivePort == 554)
        for bad in ["http://h/", "rtsp://", "rtsp://h:99999/", "rtsp://h:x/", "rtsp://[::1/"] { #expect(RTSPURL(bad) == nil, "\(bad)") }
    }
}
