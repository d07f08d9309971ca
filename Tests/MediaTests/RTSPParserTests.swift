import Media
import Testing

/// RTSP 1.0 message parsing (RFC 2326 §4, §6, §7, §10.12, §12): real messages from
/// GStreamer's RTSP server and ffmpeg (rtsp-session.pcap), built messages, and bad input.
@Suite struct RTSPParserTests {
    /// The SETUP answer of GStreamer's RTSP server, as captured.
    static let setupAnswer = crlf("""
        RTSP/1.0 200 OK
        CSeq: 3
        Transport: RTP/AVP;unicast;client_port=47130-47131;server_port=57394-57395;ssrc=B6600B2F;mode="PLAY"
        Server: GStreamer RTSP server
        Session: z+myCOZ1-n9RgEWj;timeout=60
        Date: Thu, 03 Dec 2026 12:36:39 GMT


        """)

    static let setupRequest = crlf("""
        SETUP rtsp://127.0.0.1:47554/test/stream=0 RTSP/1.0
        Transport: RTP/AVP/UDP;unicast;client_port=47130-47131
        CSeq: 3
        User-Agent: Lavf59.27.100


        """)

    @Test func deconstructsAResponse() throws {
        let m = try RTSPMessageParser.parse(Self.setupAnswer)
        #expect(m.status == 200)
        #expect(m.startLine == .response(version: "RTSP/1.0", status: 200, reason: "OK"))
        #expect(m.cseq == 3)
        #expect(m.headers.count == 5)
        #expect(m.headers["server"] == "GStreamer RTSP server")
        let session = try #require(try m.session())
        #expect(session.id == "z+myCOZ1-n9RgEWj")
        #expect(session.timeout == 60)
        let transport = try #require(try m.transports()?.first)
        #expect(transport.isRTPAVP && transport.isUDP && transport.isUnicast)
        #expect(transport.clientPort == RTSPPortRange(47130, 47131))
        #expect(transport.serverPort == RTSPPortRange(57394, 57395))
        #expect(transport.ssrc == 0xB660_0B2F)
        #expect(transport["mode"] == "\"PLAY\"")
        #expect(m.body.isEmpty)
        #expect(m.serialized() == Self.setupAnswer)
    }

    @Test func deconstructsARequest() throws {
        let m = try RTSPMessageParser.parse(Self.setupRequest)
        #expect(m.method == "SETUP")
        #expect(m.uri == "rtsp://127.0.0.1:47554/test/stream=0")
        #expect(m.cseq == 3)
        #expect(m.headers["USER-AGENT"] == "Lavf59.27.100")
        #expect(try m.transports() == [RTSPTransport(specifier: "RTP/AVP/UDP",
                                                     parameters: [.init("unicast"), .init("client_port", "47130-47131")])])
        #expect(m.serialized() == Self.setupRequest)
    }

    @Test func readsABodyByContentLength() throws {
        let sdp = "v=0\r\ns=x\r\n"
        let bytes = crlf("RTSP/1.0 200 OK\nCSeq: 2\nContent-Type: application/sdp\ncontent-length: \(sdp.utf8.count)\n\n") + Array(sdp.utf8)
        let m = try RTSPMessageParser.parse(bytes)
        #expect(m.body == Array(sdp.utf8))
        #expect(m.headers["Content-Length"] == "\(sdp.utf8.count)")
        #expect(m.serialized() == bytes)
    }

    @Test func interleavedTCPTransportIsRecognised() throws {
        let m = try RTSPMessageParser.parse(crlf("SETUP rtsp://h/s/trackID=1 RTSP/1.0\nCSeq: 4\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\n\n"))
        let t = try #require(try m.transports()?.first)
        #expect(t.isTCP && !t.isUDP)
        #expect(t.interleaved == RTSPPortRange(0, 1))
        #expect(t.clientPort == nil)
    }

    @Test func constructsAMessage() {
        var m = RTSPMessage(.request(method: "PLAY", uri: "rtsp://10.0.0.1/test/", version: "RTSP/1.0"),
                            headers: RTSPHeaderFields([("CSeq", "4"), ("Session", "abc"), ("Range", "npt=0.000-")]))
        #expect(m.serialized() == crlf("PLAY rtsp://10.0.0.1/test/ RTSP/1.0\nCSeq: 4\nSession: abc\nRange: npt=0.000-\n\n"))
        m.setBody(Array("v=0\r\n".utf8))
        #expect(m.serialized() == crlf("PLAY rtsp://10.0.0.1/test/ RTSP/1.0\nCSeq: 4\nSession: abc\nRange: npt=0.000-\nContent-Length: 5\n\nv=0\n"))
    }

    @Test func streamsPipelinedMessagesAndInterleavedFramesByteByByte() throws {
        let frame: [UInt8] = [0x24, 1, 0, 3, 0xAA, 0xBB, 0xCC]
        let stream = Self.setupRequest + frame + Self.setupAnswer
        var parser = RTSPMessageParser()
        var items: [RTSPStreamItem] = []
        for byte in stream {
            parser.append([byte])
            while let item = try parser.next() { items.append(item) }
        }
        #expect(items.count == 3)
        #expect(items[1] == .interleaved(channel: 1, payload: [0xAA, 0xBB, 0xCC]))
        guard case .message(let a) = items[0], case .message(let b) = items[2] else { Issue.record("not messages"); return }
        #expect(a.serialized() == Self.setupRequest)
        #expect(b.serialized() == Self.setupAnswer)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func acceptsBareLineFeedsAndContinuationLines() throws {
        let bytes = Array("OPTIONS * RTSP/1.0\nCSeq: 1\nX-Long: a\n  b\n\n".utf8)
        let m = try RTSPMessageParser.parse(bytes)
        #expect(m.headers["x-long"] == "a b")
        #expect(m.serialized() == bytes)
    }

    @Test func everyPrefixIsIncompleteNeverAnError() throws {
        let bytes = crlf("RTSP/1.0 200 OK\nCSeq: 2\nContent-Length: 4\n\n") + [1, 2, 3, 4]
        for n in 0..<bytes.count {
            var parser = RTSPMessageParser()
            parser.append(bytes[..<n])
            #expect(try parser.next() == nil, "prefix \(n)")
            #expect(throws: RTSPParseError.truncated) { try RTSPMessageParser.parse(Array(bytes[..<n])) }
        }
        #expect(throws: RTSPParseError.trailingBytes(1)) { try RTSPMessageParser.parse(bytes + [0x41]) }
    }

    static let malformed: [(String, RTSPParseError)] = [
        ("GET / HTTP/1.1\r\n\r\n", .malformedStartLine("not an RTSP request")),
        ("SETUP rtsp://h/s RTSP/2.0\r\nCSeq: 1\r\n\r\n", .unsupportedVersion("RTSP/2.0")),
        ("RTSP/1.1 200 OK\r\n\r\n", .unsupportedVersion("RTSP/1.1")),
        ("RTSP/1.0 2000 OK\r\n\r\n", .malformedStartLine("bad status code")),
        ("RTSP/1.0 abc OK\r\n\r\n", .malformedStartLine("bad status code")),
        ("SETUP  rtsp://h/s RTSP/1.0\r\n\r\n", .malformedStartLine("a request line has three parts")),
        ("SE(UP rtsp://h/s RTSP/1.0\r\n\r\n", .malformedStartLine("bad method")),
        ("PLAY rtsp://h/s RTSP/1.0\r\nCSeq 1\r\n\r\n", .malformedHeader(line: 2, reason: "no colon")),
        ("PLAY rtsp://h/s RTSP/1.0\r\nC Seq: 1\r\n\r\n", .malformedHeader(line: 2, reason: "bad field name")),
        ("PLAY rtsp://h/s RTSP/1.0\r\n folded: 1\r\n\r\n", .malformedHeader(line: 2, reason: "continuation line without a field")),
        ("PLAY rtsp://h/s RTSP/1.0\r\nCSeq: 1\u{0}\r\n\r\n", .malformedHeader(line: 2, reason: "control character")),
        ("PLAY rtsp://h/s\u{1} RTSP/1.0\r\n\r\n", .malformedStartLine("control character")),
        ("RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", .badContentLength("-1")),
        ("RTSP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", .badContentLength("1,2")),
        ("RTSP/1.0 200 OK\r\nContent-Length: 12345678901\r\n\r\n", .badContentLength("12345678901")),
    ]

    @Test(arguments: malformed)
    func refusesMalformedInput(_ text: String, _ error: RTSPParseError) {
        #expect(throws: error) { try RTSPMessageParser.parse(Array(text.utf8)) }
    }

    @Test func refusesOversizedInputAndStaysFailed() throws {
        let limits = RTSPLimits(maxHeaderBytes: 256, maxHeaderCount: 4, maxBodyBytes: 100)
        var parser = RTSPMessageParser(limits: limits)
        parser.append(Array("OPTIONS * RTSP/1.0\r\nX: ".utf8) + [UInt8](repeating: 0x61, count: 300))
        #expect(throws: RTSPParseError.headerTooLarge(limit: 256)) { try parser.next() }
        // The stream cannot be re-synchronised: a good message after it is not read.
        parser.append(Self.setupRequest)
        #expect(throws: RTSPParseError.headerTooLarge(limit: 256)) { try parser.next() }

        let manyHeaders = "OPTIONS * RTSP/1.0\r\n" + (1...5).map { "H\($0): x\r\n" }.joined() + "\r\n"
        #expect(throws: RTSPParseError.tooManyHeaders(limit: 4)) { try RTSPMessageParser.parse(Array(manyHeaders.utf8), limits: limits) }
        #expect(throws: RTSPParseError.bodyTooLarge(length: 101, limit: 100)) {
            try RTSPMessageParser.parse(Array("RTSP/1.0 200 OK\r\nContent-Length: 101\r\n\r\n".utf8), limits: limits)
        }
        // Refused from the header alone: the body is never awaited or buffered.
        var bodyParser = RTSPMessageParser(limits: limits)
        bodyParser.append(Array("RTSP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n".utf8))
        #expect(throws: RTSPParseError.bodyTooLarge(length: 1_000_000, limit: 100)) { try bodyParser.next() }
    }

    @Test func badTypedHeadersAreErrorsOnTheHeaderOnly() throws {
        let m = try RTSPMessageParser.parse(crlf("RTSP/1.0 200 OK\nCSeq: x\nSession: ;timeout=5\nTransport: RTP/AVP;client_port=70000-70001\nRTP-Info: seq=1\n\n"))
        #expect(m.cseq == nil)
        #expect(throws: RTSPHeaderError.self) { try m.session() }
        #expect(throws: RTSPHeaderError.self) { try m.transports() }
        #expect(throws: RTSPHeaderError.self) { try m.rtpInfo() }
        for bad in ["", "client_port=1-2", "RTP/AVP;client_port=5-4", "RTP/AVP;interleaved=0-300", "RTP/AVP;b@d"] {
            #expect(throws: RTSPHeaderError.self, "\(bad)") { try RTSPTransport.parseList(bad) }
        }
    }
}
