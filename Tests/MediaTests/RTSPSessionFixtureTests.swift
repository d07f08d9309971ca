import Media
import Testing

/// A real RTSP session (rtsp-session.pcap): GStreamer's RTSP server and ffmpeg as the player,
/// OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, with RTP and RTCP over UDP. Every message parses,
/// writes back to its exact bytes, and says what the proxy needs: the description, the
/// transport, the session, and the RTP-Info the player's stream really starts with.
@Suite struct RTSPSessionFixtureTests {
    static let serverPort: UInt16 = 47554

    static func messages(toServer: Bool) throws -> (messages: [RTSPMessage], bytes: [UInt8]) {
        let bytes = try CapturedPackets.tcpStream("rtsp-session.pcap", port: serverPort, toPort: toServer)
        var parser = RTSPMessageParser()
        parser.append(bytes)
        var out: [RTSPMessage] = []
        while let item = try parser.next() {
            guard case .message(let m) = item else { Issue.record("interleaved data in a UDP session"); continue }
            out.append(m)
        }
        #expect(parser.bufferedByteCount == 0)
        return (out, bytes)
    }

    @Test func everyMessageParsesAndWritesBackExactly() throws {
        let (requests, requestBytes) = try Self.messages(toServer: true)
        let (answers, answerBytes) = try Self.messages(toServer: false)
        #expect(requests.compactMap(\.method) == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"])
        #expect(requests.compactMap(\.cseq) == [1, 2, 3, 4, 5])
        // ffmpeg closes the connection right after TEARDOWN: the server's answer may not be sent.
        #expect(answers.count >= 4)
        #expect(answers.compactMap(\.cseq) == Array(1...answers.count))
        #expect(answers.allSatisfy { $0.status == 200 })
        #expect(requests.flatMap { $0.serialized() } == requestBytes)
        #expect(answers.flatMap { $0.serialized() } == answerBytes)
    }

    @Test func theSessionSaysWhatTheProxyNeeds() throws {
        let (requests, _) = try Self.messages(toServer: true)
        let (answers, _) = try Self.messages(toServer: false)
        let describe = answers[1]
        #expect(describe.headers["Content-Type"] == "application/sdp")
        let base = try #require(describe.contentBase)
        let sdp = try SessionDescription(parsing: describe.body)
        let video = try #require(sdp.video)
        #expect(video.codecName == "H264" && video.h264?.packetizationMode == 1)
        let control = try #require(video.controlURL(base: base))
        #expect(requests[2].uri == control)

        let setupTransport = try #require(try requests[2].transports()?.first)
        #expect(setupTransport.isUDP && setupTransport.isUnicast)
        let clientPorts = try #require(setupTransport.clientPort)
        let answered = try #require(try answers[2].transports()?.first)
        #expect(answered.clientPort == clientPorts)
        let serverPorts = try #require(answered.serverPort)
        let session = try #require(try answers[2].session())
        #expect(try requests[3].session()?.id == session.id)
        #expect(try requests[4].session()?.id == session.id)

        // The first RTP packet to the player carries the SSRC of SETUP and the seq/rtptime of
        // PLAY's RTP-Info: what a proxy answering a new player must reproduce.
        let start = try RTPStreamStart(setupAnswer: answers[2], playAnswer: answers[3], controlURL: control)
        let datagrams = try CapturedPackets.udp("rtsp-session.pcap")
        let rtp = datagrams.filter { $0.destinationPort == clientPorts.first && $0.sourcePort == serverPorts.first }
        let first = try RTPHeader(parsing: try #require(rtp.first?.payload))
        #expect(first.ssrc == start.ssrc)
        #expect(first.sequenceNumber == start.sequenceNumber)
        #expect(first.timestamp == start.timestamp)

        // RTCP both ways parses as compound packets: the server's SRs and the player's RRs.
        let toPlayer = datagrams.filter { $0.destinationPort == clientPorts.last && $0.sourcePort == serverPorts.last }
        let toServer = datagrams.filter { $0.destinationPort == serverPorts.last && $0.payload.count > 4 }
        #expect(!toPlayer.isEmpty && !toServer.isEmpty)
        for d in toPlayer + toServer {
            let compound = try RTCPCompound(parsing: d.payload)
            #expect(!compound.packets.isEmpty)
        }
        let senderReports = try toPlayer.flatMap { try RTCPCompound(parsing: $0.payload).packets }.filter {
            if case .senderReport(let sr) = $0 { return sr.ssrc == start.ssrc } else { return false }
        }
        #expect(!senderReports.isEmpty)
    }
}
