import Media
import Testing
import Wire

/// The relay with the recorded session (rtsp-session.pcap): relaying with ports rewritten, the
/// migration to a second player answered from the cache and switched at a GOP, roll-back,
/// refusals, and the end of a session giving its ports back.
@Suite struct MediaRelayTests {
    typealias Rig = RelayRig

    @Test func relaysTheRecordedSessionWithItsPortsRewritten() throws {
        let r = try Rig.recording()
        let rig = Rig()
        try rig.playOnLaptop(r)
        let summary = try #require(rig.relay.summaries().first)
        #expect(summary.id == Rig.session && summary.kind == "rtsp" && summary.state == "playing")
        #expect(summary.codec == "H264" && summary.device == "10.1.0.2" && summary.url == r.requests[1].uri)

        // RTP from the server's port goes to the player's client port, unchanged.
        let laptopRTP = IPEndpoint(Rig.laptop.address, r.clientPorts.first)
        for packet in r.rtp.prefix(20) {
            #expect(rig.serverPacket(packet, r) == [.sendToPlayer(rtcp: false, to: laptopRTP, packet)])
        }
        // The player's RTCP goes to the server's RTCP port, from the relay's.
        let laptopRTCP = IPEndpoint(Rig.laptop.address, try #require(r.clientPorts.last))
        let report = try #require(r.playerRTCP.first)
        #expect(rig.feed(.deviceDatagram(rtcp: true, from: laptopRTCP, report))
            == [.sendToServer(fromPort: Rig.pairs[0] + 1, to: IPEndpoint(Rig.server.address, try #require(r.serverPorts.last)), report)])
        #expect(rig.relay.summaries().first?.packets == 20)
        #expect(rig.relay.counters.rtpRelayed == 20 && rig.relay.counters.rtcpRelayed == 1)

        // TEARDOWN goes to the server; its answer ends the session and gives the pair back.
        #expect(rig.feed(.deviceBytes(Rig.laptopConnection, r.requests[4].serialized())) == [.sendUpstream(Rig.laptopConnection, r.requests[4].serialized())])
        #expect(rig.relay.freePairCount == Rig.pairs.count - 1)
        let ended = rig.feed(.upstreamBytes(Rig.laptopConnection, RTSPMessage.answer(to: r.requests[4]).serialized()))
        #expect(ended.contains(.closeUpstream(Rig.laptopConnection)) && ended.contains(.closeDevice(Rig.laptopConnection)))
        #expect(rig.relay.sessionCount == 0 && rig.relay.freePairCount == Rig.pairs.count)
        #expect(rig.serverPacket(r.rtp[20], r) == [])
    }

    @Test func migratesToTheNewPlayerRightBeforeAGOPAnsweringItFromTheCache() throws {
        let r = try Rig.recording()
        let rig = Rig()
        try rig.playOnLaptop(r)
        let laptopRTP = IPEndpoint(Rig.laptop.address, r.clientPorts.first)
        var next = 0
        for packet in r.rtp.prefix(40) { _ = rig.serverPacket(packet, r); next += 1 }
        let lastHeader = try RTPHeader(parsing: r.rtp[next - 1])

        let (refusal, started) = rig.relay.migrate(Rig.session, to: Rig.phone.address, deadline: .seconds(10), now: rig.now)
        #expect(refusal == nil && started == [.event(.migrationPhase(Rig.session, .requested))])
        // The phone's player opens the same URL: the relay answers it; the server hears nothing.
        #expect(rig.feed(.accepted(Rig.phoneConnection, device: Rig.phone, server: Rig.server)) == [])
        func ask(_ request: RTSPMessage) throws -> RTSPMessage {
            let actions = rig.feed(.deviceBytes(Rig.phoneConnection, request.serialized()))
            #expect(!actions.contains { if case .sendUpstream = $0 { true } else { false } })
            guard case .sendToDevice(Rig.phoneConnection, let bytes)? = actions.first else { throw RelayTestError("no answer to \(request.method ?? "?"): \(actions)") }
            return try RTSPMessageParser.parse(bytes)
        }
        #expect(try ask(r.requests[0]).status == 200)
        let described = try ask(r.requests[1])
        #expect(described.status == 200 && described.cseq == r.requests[1].cseq)
        #expect(try SessionDescription(parsing: described.body) == SessionDescription(parsing: r.answers[1].body))
        var setup = r.requests[2]
        try setup.rewriteTransports { $0.clientPort = RTSPPortRange(52000, 52001) }
        let setUp = try ask(setup)
        let transport = try #require(try setUp.transports()?.first)
        #expect(transport.serverPort == RTSPPortRange(Rig.devicePort, Rig.devicePort + 1) && transport.ssrc == lastHeader.ssrc)
        #expect(try setUp.session()?.id == (try r.answers[2].session()?.id))
        let play = try ask(r.requests[3])
        let info = try #require(try play.rtpInfo()?.first)
        #expect(info.seq == lastHeader.sequenceNumber &+ 1 && info.rtptime == lastHeader.timestamp)

        // Packets go to the laptop until a GOP starts; that one is the phone's first.
        let phoneRTP = IPEndpoint(Rig.phone.address, 52000)
        var switched: [MediaRelayAction] = []
        var toLaptop = 0
        while next < r.rtp.count {
            let actions = rig.serverPacket(r.rtp[next], r)
            next += 1
            if actions.first == .sendToPlayer(rtcp: false, to: laptopRTP, r.rtp[next - 1]) { toLaptop += 1; continue }
            switched = actions
            break
        }
        guard case .sendToPlayer(false, phoneRTP, let first)? = switched.first else { Issue.record("no switch: \(switched)"); return }
        var detector = GOPBoundaryDetector(codec: .h264)
        let startsGOP = detector.observe(packet: first)
        #expect(startsGOP, "the phone's first packet starts a GOP")
        let firstHeader = try RTPHeader(parsing: first)
        #expect(firstHeader.sequenceNumber == info.seq && firstHeader.timestamp == info.rtptime && firstHeader.ssrc == lastHeader.ssrc)
        #expect(toLaptop > 0, "the recording's GOP starts every 30 frames: some packets went to the laptop while waiting")
        // The old player: an RTCP BYE to its RTCP port, its control connection closed; the report.
        let laptopRTCP = IPEndpoint(Rig.laptop.address, try #require(r.clientPorts.last))
        #expect(switched.contains { if case .sendToPlayer(true, laptopRTCP, let bye) = $0 {
            (try? RTCPCompound(parsing: bye).packets) == [.bye(RTCPBye(sources: [lastHeader.ssrc], reason: "moved to another device"))]
        } else { false } })
        #expect(switched.contains(.closeDevice(Rig.laptopConnection)))
        let report = try #require(rig.relay.migrationReport(Rig.session))
        let switchPacket = try RTPHeader(parsing: r.rtp[next - 1])
        #expect(report.phase == .done && report.switchedAtSequence == switchPacket.sequenceNumber)
        #expect(report.framesSkipped > 0 && report.phases.map(\.phase) == [.requested, .newPlayerReady, .waitingForGOP, .switched, .done])

        // From then on every packet goes to the phone, numbered on from the promise.
        for (k, packet) in r.rtp[next...].prefix(30).enumerated() {
            guard case .sendToPlayer(false, phoneRTP, let bytes)? = rig.serverPacket(packet, r).first else { Issue.record("packet not to the phone"); return }
            #expect(try RTPHeader(parsing: bytes).sequenceNumber == info.seq! &+ UInt16(k + 1))
        }
        // The laptop's connection closing now ends nothing; the phone is the session's device.
        #expect(rig.feed(.deviceClosed(Rig.laptopConnection)) == [])
        #expect(rig.relay.summaries().first?.device == "10.3.0.2")
        // The phone's RTCP now speaks for the session; the laptop's is no longer relayed.
        let phoneRTCP = IPEndpoint(Rig.phone.address, 52001)
        let rr = try #require(r.playerRTCP.first)
        #expect(rig.feed(.deviceDatagram(rtcp: true, from: phoneRTCP, rr)).count == 1)
        #expect(rig.feed(.deviceDatagram(rtcp: true, from: laptopRTCP, rr)) == [])
        // The phone reports in its numbering; the server reads its own (RFC 3550 §6.4.1).
        let phoneHighest = UInt32(0x0001_0000) | UInt32(info.seq! &+ 30)
        let phoneReport = RTCPBuilder.receiverReport(ssrc: 0x50484F4E, reports: [RTCPReportBlock(
            ssrc: lastHeader.ssrc, fractionLost: 3, cumulativeLost: 2, extendedHighestSequence: phoneHighest,
            jitter: 7, lastSenderReport: 0, delaySinceLastSenderReport: 0)])
        guard case .sendToServer(_, _, let forwarded)? = rig.feed(.deviceDatagram(rtcp: true, from: phoneRTCP, phoneReport)).last else {
            Issue.record("the phone's report was not forwarded"); return
        }
        let block = try #require(try RTCPCompound(parsing: forwarded).reportBlocks.first)
        #expect(block.ssrc == lastHeader.ssrc && block.fractionLost == 3 && block.jitter == 7)
        #expect(block.extendedHighestSequence == 0x0001_0000 | UInt32(switchPacket.sequenceNumber &+ 30))
    }

    @Test func theServerHearsTheRelaysOwnReportsWhenNoPlayerReports() throws {
        let r = try Rig.recording()
        let rig = Rig()
        try rig.playOnLaptop(r)
        for packet in r.rtp.prefix(50) { _ = rig.serverPacket(packet, r) }
        let last = try RTPHeader(parsing: r.rtp[49])
        let serverRTCP = IPEndpoint(Rig.server.address, try #require(r.serverPorts.last))
        func ownReports(_ actions: [MediaRelayAction]) -> [RTCPReportBlock] {
            actions.compactMap { action -> RTCPReportBlock? in
                guard case .sendToServer(Rig.pairs[0] + 1, serverRTCP, let bytes) = action,
                      case .receiverReport(let rr)? = try? RTCPCompound(parsing: bytes).packets.first,
                      rr.ssrc == MediaRelay.reportSSRC(Rig.session) else { return nil }
                return rr.reports.first
            }
        }
        // No player reported yet: the relay reports itself, about the server's stream.
        let block = try #require(ownReports(rig.feed(.tick)).first)
        #expect(block.ssrc == last.ssrc && block.extendedHighestSequence & 0xFFFF == UInt32(last.sequenceNumber))
        #expect(block.cumulativeLost == 0 && block.fractionLost == 0)
        // Not again within the interval; again after it.
        rig.advance(0.3)
        #expect(ownReports(rig.feed(.tick)).isEmpty)
        rig.advance(0.3)
        #expect(ownReports(rig.feed(.tick)).count == 1)
        // A player's report going to the server restarts the interval.
        let laptopRTCP = IPEndpoint(Rig.laptop.address, try #require(r.clientPorts.last))
        rig.advance(0.4)
        #expect(rig.feed(.deviceDatagram(rtcp: true, from: laptopRTCP, r.playerRTCP[0])).count == 1)
        rig.advance(0.2)
        #expect(ownReports(rig.feed(.tick)).isEmpty)
        // Ten packets lost from here: the next own report says so.
        for packet in r.rtp[60..<80] { _ = rig.serverPacket(packet, r) }
        rig.advance(0.5)
        let lossy = try #require(ownReports(rig.feed(.tick)).first)
        #expect(lossy.cumulativeLost == 10 && lossy.fractionLost == UInt8(10 * 256 / 30))
    }

    /// The relay's own reports carry the interarrival jitter of what it received (RFC 3550
    /// §6.4.1), here against the RFC's formula in floating point: J += (|D| - J) / 16.
    @Test func theRelaysOwnReportsCarryTheInterarrivalJitter() throws {
        let r = try Rig.recording()
        let rig = Rig()
        try rig.playOnLaptop(r)
        let serverRTCP = IPEndpoint(Rig.server.address, try #require(r.serverPorts.last))
        func ownJitter() throws -> UInt32 {
            let blocks = rig.feed(.tick).compactMap { action -> RTCPReportBlock? in
                guard case .sendToServer(_, serverRTCP, let bytes) = action,
                      case .receiverReport(let rr)? = try? RTCPCompound(parsing: bytes).packets.first else { return nil }
                return rr.reports.first
            }
            return try #require(blocks.first).jitter
        }
        // Arriving exactly on the stream's 90 kHz clock: no jitter (microsecond rounding aside).
        let start = rig.now, first = try RTPHeader(parsing: r.rtp[0]).timestamp
        /// Packet `i` arrives `late` seconds after its timestamp's time; its transit in ticks.
        func arrive(_ i: Int, late: (Double) -> Double) throws -> Double {
            let ticks = Double(try RTPHeader(parsing: r.rtp[i]).timestamp &- first)
            let delay = late(ticks)
            rig.now = start.adding(.seconds(ticks / 90_000 + delay))
            _ = rig.serverPacket(r.rtp[i], r)
            return delay * 90_000
        }
        for i in 0..<40 { _ = try arrive(i, late: { _ in 0 }) }
        #expect(try ownJitter() <= 1)
        // Every other frame (3000 ticks at 30 fps) 5 ms late: the jitter follows the formula.
        var expected = 0.0, lastTransit = 0.0
        for i in 40..<160 {
            let transit = try arrive(i, late: { ticks in Int(ticks / 3000) % 2 == 1 ? 0.005 : 0 })
            expected += (abs(transit - lastTransit) - expected) / 16
            lastTransit = transit
        }
        rig.advance(1)
        let jitter = try ownJitter()
        #expect(abs(Double(jitter) - expected) <= 2, "jitter \(jitter), the formula gives \(expected)")
        // 450 ticks at each frame boundary, none between a frame's packets: a few hundred.
        #expect(expected > 100)
    }

    @Test func rollsBackWhenTheNewPlayerNeverComes() throws {
        let r = try Rig.recording()
        let rig = Rig()
        try rig.playOnLaptop(r)
        #expect(rig.relay.migrate(Rig.session, to: Rig.phone.address, deadline: .seconds(3), now: rig.now).refusal == nil)
        rig.advance(2)
        #expect(rig.feed(.tick).isEmpty)
        rig.advance(1.5)
        let actions = rig.feed(.tick)
        let finished = actions.compactMap { if case .event(.migrationFinished(_, let report)) = $0 { report } else { nil } }
        #expect(finished.first?.phase == .rolledBack && finished.first?.reason?.contains("did not set up") == true)
        let laptopRTP = IPEndpoint(Rig.laptop.address, r.clientPorts.first)
        #expect(rig.serverPacket(r.rtp[0], r) == [.sendToPlayer(rtcp: false, to: laptopRTP, r.rtp[0])])
        // The phone connecting afterwards is a player of its own (a session of its own).
        #expect(rig.feed(.accepted(Rig.phoneConnection, device: Rig.phone, server: Rig.server)) == [])
        #expect(rig.feed(.deviceBytes(Rig.phoneConnection, r.requests[0].serialized())) == [.connectUpstream(Rig.phoneConnection, to: Rig.server)])
        #expect(rig.relay.sessionCount == 2)
    }

    @Test func theOldPlayerLeavingDuringAMoveLeavesTheServersSessionToTheNewOne() throws {
        let r = try Rig.recording()
        let rig = Rig()
        try rig.playOnLaptop(r)
        #expect(rig.relay.migrate(Rig.session, to: Rig.phone.address, deadline: .seconds(3), now: rig.now).refusal == nil)
        let left = rig.feed(.deviceBytes(Rig.laptopConnection, r.requests[4].serialized()))
        #expect(!left.contains { if case .sendUpstream = $0 { true } else { false } }, "the TEARDOWN stays with the relay")
        #expect(left.contains { if case .sendToDevice(Rig.laptopConnection, let b) = $0 { (try? RTSPMessageParser.parse(b))?.status == 200 } else { false } })
        #expect(left.contains(.closeDevice(Rig.laptopConnection)) && rig.relay.sessionCount == 1)
        // Nobody came: the move rolls back, and with no player left the session ends upstream too.
        rig.advance(4)
        let ended = rig.feed(.tick)
        #expect(ended.contains(.closeUpstream(Rig.laptopConnection)) && rig.relay.sessionCount == 0)
        #expect(rig.relay.freePairCount == Rig.pairs.count)
    }

    @Test func refusesMigrationsThatCannotWork() throws {
        let r = try Rig.recording()
        let rig = Rig()
        #expect(rig.relay.migrate(MediaSessionID(9), to: Rig.phone.address, deadline: .seconds(5), now: rig.now).refusal == "no media session m9")
        #expect(rig.feed(.accepted(Rig.laptopConnection, device: Rig.laptop, server: Rig.server)) == [])
        #expect(rig.relay.migrate(Rig.session, to: Rig.phone.address, deadline: .seconds(5), now: rig.now).refusal?.contains("not playing") == true)
        rig.relay = RelayRig().relay
        try rig.playOnLaptop(r)
        #expect(rig.relay.migrate(Rig.session, to: Rig.laptop.address, deadline: .seconds(5), now: rig.now).refusal?.contains("already plays") == true)
        #expect(rig.relay.migrate(Rig.session, to: Rig.phone.address, deadline: .seconds(5), now: rig.now).refusal == nil)
        #expect(rig.relay.migrate(Rig.session, to: Rig.phone.address, deadline: .seconds(5), now: rig.now).refusal?.contains("already migrating") == true)
    }

    @Test func badInputIsCountedAndDroppedAndTheSessionGoesOn() throws {
        let r = try Rig.recording()
        let rig = Rig()
        try rig.playOnLaptop(r)
        let laptopRTP = IPEndpoint(Rig.laptop.address, r.clientPorts.first)
        let laptopRTCP = IPEndpoint(Rig.laptop.address, try #require(r.clientPorts.last))
        let server = IPEndpoint(Rig.server.address, r.serverPorts.first)
        // RTP of a bad version, too short, or from another address than the server's.
        #expect(rig.feed(.serverDatagram(localPort: Rig.pairs[0], from: server, [0x40] + Array(r.rtp[0].dropFirst()))) == [])
        #expect(rig.feed(.serverDatagram(localPort: Rig.pairs[0], from: server, [0x80, 0x60, 0x00])) == [])
        #expect(rig.feed(.serverDatagram(localPort: Rig.pairs[0], from: IPEndpoint(.v4(IPv4Address(10, 2, 0, 9)), server.port), r.rtp[0])) == [])
        #expect(rig.feed(.serverDatagram(localPort: 47000, from: server, r.rtp[0])) == [])
        #expect(rig.feed(.serverDatagram(localPort: Rig.pairs[0], from: IPEndpoint(server.address, 59977), r.rtp[0])) == [])
        // RTCP whose length field lies; RTCP from an endpoint that is nobody's.
        var lying = try #require(r.playerRTCP.first)
        lying[3] = 0xFF
        #expect(rig.feed(.deviceDatagram(rtcp: true, from: laptopRTCP, lying)) == [])
        #expect(rig.feed(.deviceDatagram(rtcp: true, from: IPEndpoint(Rig.laptop.address, 9), r.playerRTCP[0])) == [])
        #expect(rig.relay.counters.badRTP == 2 && rig.relay.counters.badRTCP == 1 && rig.relay.counters.unknownSource == 4)
        #expect(rig.serverPacket(r.rtp[0], r) == [.sendToPlayer(rtcp: false, to: laptopRTP, r.rtp[0])])

        // A second player sending an unparseable request gets 400 and is closed; its session
        // ends and gives back what it held; the first goes on.
        let other = MediaConnectionID(7)
        #expect(rig.feed(.accepted(other, device: Rig.phone, server: Rig.server)) == [])
        let closed = rig.feed(.deviceBytes(other, Array("PLAY rtsp://x RTSP/1.0\r\nCSeq: 1\r\nbroken header line\r\n\r\n".utf8)))
        // The server never hears of it: no connection was asked for, none is closed.
        #expect(closed.contains(.closeDevice(other)) && !closed.contains { if case .connectUpstream = $0 { true } else { false } })
        #expect(!closed.contains(.closeUpstream(other)))
        #expect(closed.contains { if case .sendToDevice(other, let b) = $0 { (try? RTSPMessageParser.parse(b))?.status == 400 } else { false } })
        #expect(rig.relay.counters.badRTSP == 1 && rig.relay.sessionCount == 1)
        #expect(rig.serverPacket(r.rtp[1], r) == [.sendToPlayer(rtcp: false, to: laptopRTP, r.rtp[1])])
    }

    @Test func limitsSessionsPerDeviceAndEndsThemWithTheServersConnection() throws {
        let rig = Rig(maxSessionsPerDevice: 2)
        for k in 1...2 { #expect(rig.feed(.accepted(MediaConnectionID(UInt64(k)), device: Rig.laptop, server: Rig.server)) == []) }
        let third = rig.feed(.accepted(MediaConnectionID(3), device: Rig.laptop, server: Rig.server))
        #expect(third.contains(.closeDevice(MediaConnectionID(3))) && rig.relay.counters.refusedConnections == 1)
        // Another device is not affected by the laptop's count.
        #expect(rig.feed(.accepted(MediaConnectionID(4), device: Rig.phone, server: Rig.server)) == [])
        #expect(rig.relay.sessionCount == 3)
        let ended = rig.feed(.upstreamClosed(MediaConnectionID(1), reason: "reset"))
        #expect(ended.contains(.closeDevice(MediaConnectionID(1))) && rig.relay.sessionCount == 2)
        // A connection that never sets a session up holds its place for 30 s at most.
        rig.advance(29)
        _ = rig.feed(.tick)
        #expect(rig.relay.sessionCount == 2)
        rig.advance(2)
        let expired = rig.feed(.tick)
        #expect(rig.relay.sessionCount == 0 && expired.contains(.closeDevice(MediaConnectionID(4))))
    }
}

struct RelayTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Service mode: the player's URLs name the published address, the server's its own; the relay
/// rewrites each toward the other (request URLs, Content-Base, RTP-Info), and a migrating player
/// is answered with the published names.
@Suite struct MediaRelayServiceModeTests {
    static let published = IPEndpoint(.v4(IPv4Address(10, 9, 9, 9)), 8554)

    @Test func urlsAreRewrittenBothWays() throws {
        let r = try RelayRig.recording()
        var config = MediaRelayConfig(devicePortRTP: RelayRig.devicePort, serverPortPairs: RelayRig.pairs)
        config.services = [Self.published: RelayRig.server]
        var relay = MediaRelay(config: config)
        let now = MediaTime.seconds(1)
        let c = MediaConnectionID(1)
        #expect(relay.handle(.accepted(c, device: RelayRig.laptop, server: Self.published), now: now) == [])
        let serverURL = try #require(r.requests[1].uri)
        let playerURL = RTSPURL.rebased(serverURL, from: RelayRig.server, to: Self.published)
        #expect(playerURL == "rtsp://10.9.9.9:8554/test")
        var describe = r.requests[1]
        describe.setRequestURI(playerURL)
        #expect(relay.handle(.deviceBytes(c, describe.serialized()), now: now) == [.connectUpstream(c, to: RelayRig.server)])
        guard case .sendUpstream(_, let sent)? = relay.handle(.upstreamConnected(c), now: now).first else {
            Issue.record("DESCRIBE not relayed"); return
        }
        #expect(try RTSPMessageParser.parse(sent).uri == serverURL)
        guard case .sendToDevice(_, let answered)? = relay.handle(.upstreamBytes(c, r.answers[1].serialized()), now: now).first else {
            Issue.record("DESCRIBE answer not relayed"); return
        }
        let answer = try RTSPMessageParser.parse(answered)
        #expect(answer.contentBase == RTSPURL.rebased(try #require(r.answers[1].contentBase), from: RelayRig.server, to: Self.published))
        #expect(answer.contentBase?.hasPrefix("rtsp://10.9.9.9:8554/") == true && answer.body == r.answers[1].body)
        // A URL naming neither address is left alone.
        #expect(RTSPURL.rebased("rtsp://192.0.2.1:554/x", from: RelayRig.server, to: Self.published) == "rtsp://192.0.2.1:554/x")
    }
}
