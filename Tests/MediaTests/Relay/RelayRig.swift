import Media
import Testing
import Wire

/// A `MediaRelay` driven by a test: the recorded RTSP session (rtsp-session.pcap, GStreamer's
/// server and ffmpeg) replayed through it, with an injected clock.
final class RelayRig {
    var relay: MediaRelay
    var now = MediaTime.seconds(100)

    static let devicePort: UInt16 = 46000
    static let pairs: [UInt16] = [46002, 46004, 46006]
    static let laptop = IPEndpoint(.v4(IPv4Address(10, 1, 0, 2)), 40312)
    static let phone = IPEndpoint(.v4(IPv4Address(10, 3, 0, 2)), 51000)
    static let server = IPEndpoint(.v4(IPv4Address(127, 0, 0, 1)), 47554)
    static let laptopConnection = MediaConnectionID(1)
    static let phoneConnection = MediaConnectionID(2)
    static let session = MediaSessionID(1)

    /// The recorded exchange: requests (OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN), answers, the
    /// player's and the server's ports, and the server's RTP in capture order.
    struct Recording {
        let requests: [RTSPMessage]
        let answers: [RTSPMessage]
        let clientPorts: RTSPPortRange
        let serverPorts: RTSPPortRange
        let rtp: [[UInt8]]
        let playerRTCP: [[UInt8]]
    }

    static func recording() throws -> Recording {
        let (requests, _) = try RTSPSessionFixtureTests.messages(toServer: true)
        let (answers, _) = try RTSPSessionFixtureTests.messages(toServer: false)
        let clientPorts = try #require(try requests[2].transports()?.first?.clientPort)
        let serverPorts = try #require(try answers[2].transports()?.first?.serverPort)
        let datagrams = try CapturedPackets.udp("rtsp-session.pcap")
        return Recording(
            requests: requests, answers: answers, clientPorts: clientPorts, serverPorts: serverPorts,
            rtp: datagrams.filter { $0.destinationPort == clientPorts.first && $0.sourcePort == serverPorts.first }.map(\.payload),
            playerRTCP: datagrams.filter { $0.destinationPort == serverPorts.last && $0.payload.count > 4 }.map(\.payload))
    }

    init(maxSessionsPerDevice: Int = 16) {
        relay = MediaRelay(config: MediaRelayConfig(devicePortRTP: Self.devicePort, serverPortPairs: Self.pairs,
                                                    maxSessionsPerDevice: maxSessionsPerDevice))
    }

    @discardableResult
    func feed(_ input: MediaRelayInput) -> [MediaRelayAction] { relay.handle(input, now: now) }

    func advance(_ seconds: Double) { now = now.adding(.seconds(seconds)) }

    var serverRTP: IPEndpoint { get throws { IPEndpoint(Self.server.address, try Self.recording().serverPorts.first) } }

    /// The laptop's session through OPTIONS, DESCRIBE, SETUP and PLAY: every action checked on
    /// the way (ports rewritten, nothing else changed).
    func playOnLaptop(_ r: Recording) throws {
        #expect(feed(.accepted(Self.laptopConnection, device: Self.laptop, server: Self.server)) == [])
        // The first request asks for the server's connection; its bytes wait for it.
        #expect(feed(.deviceBytes(Self.laptopConnection, r.requests[0].serialized())) == [.connectUpstream(Self.laptopConnection, to: Self.server)])
        #expect(feed(.upstreamConnected(Self.laptopConnection)) == [.sendUpstream(Self.laptopConnection, r.requests[0].serialized())])
        #expect(feed(.upstreamBytes(Self.laptopConnection, r.answers[0].serialized())) == [.sendToDevice(Self.laptopConnection, r.answers[0].serialized())])
        #expect(feed(.deviceBytes(Self.laptopConnection, r.requests[1].serialized())) == [.sendUpstream(Self.laptopConnection, r.requests[1].serialized())])
        #expect(feed(.upstreamBytes(Self.laptopConnection, r.answers[1].serialized())) == [.sendToDevice(Self.laptopConnection, r.answers[1].serialized())])

        // SETUP: the server is given the relay's pair; the player is told the device-side pair.
        let setup = feed(.deviceBytes(Self.laptopConnection, r.requests[2].serialized()))
        guard case .sendUpstream(_, let upstreamSetup)? = setup.first, setup.count == 1 else { Issue.record("SETUP: \(setup)"); return }
        let sent = try RTSPMessageParser.parse(upstreamSetup)
        #expect(try sent.transports()?.first?.clientPort == RTSPPortRange(Self.pairs[0], Self.pairs[0] + 1))
        #expect(sent.uri == r.requests[2].uri && sent.cseq == r.requests[2].cseq)
        let answered = feed(.upstreamBytes(Self.laptopConnection, r.answers[2].serialized()))
        guard case .sendToDevice(_, let toPlayer)? = answered.first, answered.count == 1 else { Issue.record("SETUP answer: \(answered)"); return }
        let transport = try #require(try RTSPMessageParser.parse(toPlayer).transports()?.first)
        #expect(transport.clientPort == r.clientPorts)
        #expect(transport.serverPort == RTSPPortRange(Self.devicePort, Self.devicePort + 1))
        #expect(transport.ssrc == (try r.answers[2].transports()?.first?.ssrc))

        #expect(feed(.deviceBytes(Self.laptopConnection, r.requests[3].serialized())) == [.sendUpstream(Self.laptopConnection, r.requests[3].serialized())])
        let played = feed(.upstreamBytes(Self.laptopConnection, r.answers[3].serialized()))
        #expect(played.contains(.sendToDevice(Self.laptopConnection, r.answers[3].serialized())))
        #expect(played.contains { if case .event(.sessionStarted(Self.session, _, _)) = $0 { true } else { false } })
    }

    /// A server RTP packet through the relay: where it went and with what bytes.
    func serverPacket(_ bytes: [UInt8], _ r: Recording) -> [MediaRelayAction] {
        feed(.serverDatagram(localPort: Self.pairs[0], from: IPEndpoint(Self.server.address, r.serverPorts.first), bytes))
    }
}
