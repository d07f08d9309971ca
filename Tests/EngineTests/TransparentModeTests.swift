import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Transparent gateway (DESIGN §3 mode 1): intercept tcp/8080, NAT 10.2.0.1. Each test is a
/// scripted exchange, packet by packet, with the engine's clock injected.
@Suite("Transparent mode")
struct TransparentModeTests {
    let c = Conversation()

    @Test("a whole connection: handshake, data both ways, FIN/FIN-ACK/ACK, linger, removal")
    func wholeConnection() throws {
        let h = EngineHarness(Lab.transparent())

        // SYN: source becomes NAT:61000 (the first port), destination unchanged.
        let synOptions: [TCPOption] = [.maximumSegmentSize(1460), .sackPermitted,
                                            .timestamp(value: 77, echoReply: 0), .noOperation, .windowScale(7)]
        let syn = c.device(.syn, seq: 1000, window: 64240, options: synOptions, id: 0x1234)
        let s1 = h.send(syn)
        #expect(s1.verdict == .forward)
        #expect(s1.bytes == edited(syn, src: "10.2.0.1:61000", dst: "10.2.0.2:8080"))
        #expect(s1.bytes == recomputedChecksums(s1.bytes))
        let d1 = try s1.decoded
        #expect(d1.source == endpoint("10.2.0.1:61000"))
        #expect(d1.destination == endpoint("10.2.0.2:8080"))
        #expect(d1.seq == SeqNumber(1000) && d1.window == 64240 && d1.identification == 0x1234)
        #expect(d1.options == synOptions)
        #expect(d1.checksumsValid)
        #expect(s1.generated.isEmpty)
        #expect(h.state() == .synSent)
        #expect(h.engine.flowCount == 1 && h.engine.natPortsInUse == 1)

        // SYN-ACK from the server to NAT:61000 comes back as server -> device.
        let synAck = c.server([.syn, .ack], seq: 5000, ack: 1001, window: 65160,
                              options: [.maximumSegmentSize(1400), .sackPermitted, .windowScale(9)])
        let s2 = h.send(synAck)
        #expect(s2.verdict == .forward)
        #expect(s2.bytes == edited(synAck, src: "10.2.0.2:8080", dst: "10.1.0.2:40000"))
        #expect(try s2.decoded.checksumsValid)
        #expect(h.state() == .synReceived)

        h.advance(nanoseconds: 300_000)
        c.deviceSends(h, .ack, seq: 1001, ack: 5001)
        #expect(h.state() == .established)

        // Data both ways.
        let request = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        c.deviceSends(h, [.psh, .ack], seq: 1001, ack: 5001, payload: request)
        let response = pattern(1200)
        let s5 = c.serverSends(h, [.psh, .ack], seq: 5001, ack: 1001 + 18, payload: response)
        #expect(try s5.decoded.payload == response)
        c.deviceSends(h, .ack, seq: 1019, ack: 6201)
        #expect(h.state() == .established)
        let f = try #require(h.flow())
        #expect(f.packetsToServer == 4 && f.bytesToServer == 18)
        #expect(f.packetsToDevice == 2 && f.bytesToDevice == 1200)
        #expect(f.nat == endpoint("10.2.0.1:61000") && f.server == endpoint(Lab.server) && f.original == endpoint(Lab.server))

        // FIN / FIN-ACK / ACK.
        c.deviceSends(h, [.fin, .ack], seq: 1019, ack: 6201)
        #expect(h.state() == .halfClosed)
        c.serverSends(h, [.fin, .ack], seq: 6201, ack: 1020)
        #expect(h.state() == .halfClosed)
        c.deviceSends(h, .ack, seq: 1020, ack: 6202)
        #expect(h.state() == .closed)

        // Kept for the closed linger (30 s), not a nanosecond less; then removed, port released.
        h.advance(seconds: 30)
        h.expire()
        #expect(h.engine.flowCount == 1)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0)
        #expect(h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.flowsCreated == 1)
        #expect(h.engine.counters.flowsClosed == 1)
        #expect(h.engine.counters.flowsExpired == 0)
        #expect(h.engine.inFlightStorageBytes == 0)
        #expect(h.engine.counters.packetsForwarded == 9)
        #expect(h.countersAddUp)
    }

    @Test("half-close: the device FINs, the server keeps sending for a while, then closes")
    func halfClose() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        c.deviceSends(h, [.psh, .ack], seq: 1001, ack: 5001, payload: pattern(10))
        c.deviceSends(h, [.fin, .ack], seq: 1011, ack: 5001)
        #expect(h.state() == .halfClosed)
        // The server acknowledges the FIN and keeps sending; the device keeps acknowledging.
        var serverSeq: UInt32 = 5001
        for i in 0..<5 {
            h.advance(seconds: 100) // each gap below the half-closed idle timeout (600 s)
            h.expire()
            c.serverSends(h, [.psh, .ack], seq: serverSeq, ack: 1012, payload: pattern(500, from: i))
            serverSeq += 500
            c.deviceSends(h, .ack, seq: 1012, ack: serverSeq)
            #expect(h.state() == .halfClosed)
        }
        #expect(h.flow()?.bytesToDevice == 2500)
        c.serverSends(h, [.fin, .ack], seq: serverSeq, ack: 1012)
        #expect(h.state() == .halfClosed)
        c.deviceSends(h, .ack, seq: 1012, ack: serverSeq + 1)
        #expect(h.state() == .closed)
        h.advance(seconds: 31)
        h.expire()
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
    }

    @Test("half-close the other way: the server FINs first, the device keeps sending")
    func halfCloseFromServer() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        c.serverSends(h, [.fin, .ack], seq: 5001, ack: 1001)
        c.deviceSends(h, .ack, seq: 1001, ack: 5002)
        #expect(h.state() == .halfClosed)
        c.deviceSends(h, [.psh, .ack], seq: 1001, ack: 5002, payload: pattern(300))
        c.serverSends(h, .ack, seq: 5002, ack: 1301)
        #expect(h.state() == .halfClosed)
        c.deviceSends(h, [.fin, .ack], seq: 1301, ack: 5002)
        #expect(h.state() == .halfClosed)
        c.serverSends(h, .ack, seq: 5002, ack: 1302)
        #expect(h.state() == .closed)
    }

    @Test("simultaneous close: both FINs cross, each is acknowledged")
    func simultaneousClose() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        // Neither FIN acknowledges the other's.
        c.deviceSends(h, [.fin, .ack], seq: 1001, ack: 5001)
        c.serverSends(h, [.fin, .ack], seq: 5001, ack: 1001)
        #expect(h.state() == .halfClosed)
        c.deviceSends(h, .ack, seq: 1002, ack: 5002)
        #expect(h.state() == .halfClosed)
        c.serverSends(h, .ack, seq: 5002, ack: 1002)
        #expect(h.state() == .closed)
        h.advance(seconds: 31)
        h.expire()
        #expect(h.engine.flowCount == 0)
        #expect(h.engine.counters.flowsClosed == 1)
    }

    @Test("a FIN that is not acknowledged does not close; a retransmitted FIN does not either")
    func unacknowledgedFIN() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        c.deviceSends(h, [.fin, .ack], seq: 1001, ack: 5001)
        c.serverSends(h, [.fin, .ack], seq: 5001, ack: 1001) // FIN, but not acking the device's
        c.deviceSends(h, [.fin, .ack], seq: 1001, ack: 5002)  // retransmitted FIN, acks the server's
        #expect(h.state() == .halfClosed)
        c.serverSends(h, .ack, seq: 5002, ack: 1002)
        #expect(h.state() == .closed)
    }

    @Test("RST from either side (device: true): forwarded, state reset, removed after the linger", arguments: [true, false])
    func resetFromEitherSide(fromDevice: Bool) throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        c.deviceSends(h, [.psh, .ack], seq: 1001, ack: 5001, payload: pattern(20))
        if fromDevice {
            c.deviceSends(h, [.rst, .ack], seq: 1021, ack: 5001)
        } else {
            c.serverSends(h, .rst, seq: 5001)
        }
        #expect(h.state() == .reset)
        h.advance(seconds: 30)
        h.expire()
        #expect(h.engine.flowCount == 1)
        h.advance(nanoseconds: 1)
        h.expire()
        #expect(h.engine.flowCount == 0)
        #expect(h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.flowsClosed == 1)
    }

    /// RFC 5961 §3.2: a RST outside the receiver's window is discarded by it, one inside but
    /// not at RCV.NXT draws a challenge ACK; neither ends the connection, so neither may end
    /// the flow (it used to be marked reset and expire after the closed linger while the ends
    /// went on, and the device's next segments then matched no flow).
    @Test("an out-of-window RST is dropped and counted, an in-window one is forwarded; the flow lives on either way")
    func resetValidation() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        // Out of the server's window (far ahead of what it acknowledged), from the device.
        #expect(h.send(c.device(.rst, seq: 900_000)).verdict == .drop(.resetOutOfWindow))
        #expect(h.state() == .established)
        // Behind the device's RCV.NXT, from the server.
        #expect(h.send(c.server(.rst, seq: 77)).verdict == .drop(.resetOutOfWindow))
        #expect(h.engine.counters[.resetOutOfWindow] == 2)
        // Inside the server's window but not at its RCV.NXT: forwarded (the server sends the
        // challenge ACK), the flow stays established and expires as one.
        #expect(c.deviceSends(h, .rst, seq: 1001 + 3000).verdict == .forward)
        #expect(h.state() == .established)
        h.advance(seconds: 60)
        h.expire()
        #expect(h.state() == .established)
        // Half-closed: the same.
        c.deviceSends(h, [.fin, .ack], seq: 1001, ack: 5001)
        #expect(h.state() == .halfClosed)
        #expect(h.send(c.server(.rst, seq: 9_000_000)).verdict == .drop(.resetOutOfWindow))
        #expect(h.state() == .halfClosed)
        // At RCV.NXT: the flow is reset.
        #expect(c.serverSends(h, .rst, seq: 5001).verdict == .forward)
        #expect(h.state() == .reset)
    }

    @Test("a RST its receiver ignored (traffic goes on) restores the previous state")
    func ignoredReset() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        // At the server's RCV.NXT, so the proxy takes it; the server did not (traffic goes on).
        c.deviceSends(h, .rst, seq: 1001)
        #expect(h.state() == .reset)
        c.serverSends(h, [.psh, .ack], seq: 5001, ack: 1001, payload: pattern(100))
        #expect(h.state() == .established)
        // It expires as an established flow now, not after the closed linger.
        h.advance(seconds: 60)
        h.expire()
        #expect(h.state() == .established)
    }

    @Test("a non-SYN for an unknown flow passes through unchanged")
    func unknownFlowPassesThrough() throws {
        let h = EngineHarness(Lab.transparent())
        let packets = [
            c.device(.ack, seq: 1, ack: 2),
            c.device([.psh, .ack], seq: 1, ack: 2, payload: pattern(100)),
            c.device([.fin, .ack], seq: 101, ack: 2),
            c.device(.rst, seq: 7),
            c.device([.syn, .ack], seq: 1, ack: 2), // a SYN-ACK is not an opening SYN
            tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:443", flags: .syn, seq: 1), // not intercepted
        ]
        for p in packets {
            let out = h.send(p)
            #expect(out.verdict == .passThrough)
            #expect(out.bytes == p)
            #expect(out.generated.isEmpty)
        }
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.packetsPassedThrough == UInt64(packets.count))
        #expect(h.countersAddUp)
    }

    @Test("a SYN carrying MPTCP (kind 30), TCP-MD5 or TCP-AO passes through unmanaged",
          arguments: [[30, 4, 0x01, 0x01], [19, 18] + [UInt8](repeating: 0xAB, count: 16), [29, 4, 1, 2]] as [[UInt8]])
    func unspliceableSynPassesThrough(option: [UInt8]) throws {
        let h = EngineHarness(Lab.transparent())
        let syn = c.device(.syn, seq: 1000, options: [.maximumSegmentSize(1460), .raw(option)])
        let out = h.send(syn)
        #expect(out.verdict == .passThrough)
        #expect(out.bytes == syn)
        #expect(out.generated.isEmpty)
        #expect(h.engine.flowCount == 0 && h.engine.natPortsInUse == 0)
        #expect(h.engine.counters.flowsCreated == 0)
        // The rest of that connection passes through too.
        let ack = c.device(.ack, seq: 1001, ack: 5001)
        #expect(h.send(ack).verdict == .passThrough)
        #expect(h.engine.flowCount == 0)
    }

    @Test("a device reusing its source port after the old flow closed gets a new flow")
    func sourcePortReuse() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        c.deviceSends(h, [.fin, .ack], seq: 1001, ack: 5001)
        c.serverSends(h, [.fin, .ack], seq: 5001, ack: 1002)
        c.deviceSends(h, .ack, seq: 1002, ack: 5002)
        #expect(h.state() == .closed)
        let oldID = try #require(h.flow()?.id)

        // Within the linger, the device opens a new connection from the same port.
        h.advance(seconds: 2)
        let second = Conversation(nat: "10.2.0.1:61001")
        second.deviceSends(h, .syn, seq: 90_000)
        let f = try #require(h.flow())
        #expect(f.id != oldID)
        #expect(f.state == .synSent)
        #expect(f.nat == endpoint("10.2.0.1:61001"))
        #expect(h.engine.flowCount == 1 && h.engine.natPortsInUse == 1)
        #expect(h.engine.counters.flowsCreated == 2 && h.engine.counters.flowsClosed == 1)
        second.serverSends(h, [.syn, .ack], seq: 1, ack: 90_001)
        second.deviceSends(h, .ack, seq: 90_001, ack: 2)
        #expect(h.state() == .established)
        // The old NAT port no longer leads anywhere.
        let stale = c.server(.ack, seq: 5002, ack: 1002)
        #expect(h.send(stale).verdict == .drop(.noFlow))
    }

    @Test("a retransmitted SYN of a live flow stays on that flow")
    func retransmittedSyn() throws {
        let h = EngineHarness(Lab.transparent())
        c.deviceSends(h, .syn, seq: 1000)
        h.advance(seconds: 1)
        c.deviceSends(h, .syn, seq: 1000)
        #expect(h.engine.flowCount == 1 && h.engine.natPortsInUse == 1)
        #expect(h.engine.counters.flowsCreated == 1)
        #expect(h.state() == .synSent)
    }

    @Test("after a RST the device may reconnect from the same port at once")
    func reconnectAfterReset() throws {
        let h = EngineHarness(Lab.transparent())
        c.deviceSends(h, .syn, seq: 1000)
        c.serverSends(h, [.rst, .ack], seq: 0, ack: 1001) // connection refused
        #expect(h.state() == .reset)
        Conversation(nat: "10.2.0.1:61001").deviceSends(h, .syn, seq: 2000)
        #expect(h.state() == .synSent)
        #expect(h.engine.flowCount == 1 && h.engine.natPortsInUse == 1)
    }

    @Test("a packet to the NAT port from another endpoint than the flow's server is dropped")
    func unexpectedSource() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        let spoof = tcp4(src: "10.2.0.3:8080", dst: Lab.firstNAT, flags: .ack, seq: 5001, ack: 1001)
        #expect(h.send(spoof).verdict == .drop(.unexpectedSource))
        let otherPort = tcp4(src: "10.2.0.2:8081", dst: Lab.firstNAT, flags: .ack, seq: 5001, ack: 1001)
        #expect(h.send(otherPort).verdict == .drop(.unexpectedSource))
        #expect(h.engine.counters[.unexpectedSource] == 2)
        #expect(h.state() == .established)
        #expect(h.flow()?.packetsToDevice == 1)
    }

    @Test("two devices, same server: separate flows, separate NAT ports, no cross-talk")
    func twoDevices() throws {
        let h = EngineHarness(Lab.transparent())
        let a = Conversation(device: "10.1.0.2:40000", nat: "10.2.0.1:61000")
        let b = Conversation(device: "10.3.0.2:40000", nat: "10.2.0.1:61001")
        a.deviceSends(h, .syn, seq: 100)
        b.deviceSends(h, .syn, seq: 200)
        b.serverSends(h, [.syn, .ack], seq: 900, ack: 201)
        a.serverSends(h, [.syn, .ack], seq: 800, ack: 101)
        a.deviceSends(h, .ack, seq: 101, ack: 801)
        #expect(h.state(device: "10.1.0.2:40000") == .established)
        #expect(h.state(device: "10.3.0.2:40000") == .synReceived)
        #expect(h.engine.flowCount == 2)
    }

    @Test("a packet with IPv4 options (IHL 6) is rewritten at the right offsets")
    func ipv4Options() throws {
        let h = EngineHarness(Lab.transparent())
        /// `packet` with a 4-byte IPv4 option block (NOP, NOP, NOP, EOL) after the fixed header.
        func withIPOptions(_ packet: [UInt8]) -> [UInt8] {
            var b = Array(packet[0..<20]) + [1, 1, 1, 0] + Array(packet[20...])
            b[0] = 0x46
            b[2] = UInt8(b.count >> 8); b[3] = UInt8(b.count & 0xFF)
            return recomputedChecksums(b)
        }
        let syn = withIPOptions(c.device(.syn, seq: 1000))
        let out = h.send(syn)
        #expect(out.verdict == .forward)
        #expect(out.bytes == edited(syn, src: Lab.firstNAT, dst: Lab.server))
        let synAck = withIPOptions(c.server([.syn, .ack], seq: 5000, ack: 1001, payload: pattern(9)))
        let back = h.send(synAck)
        #expect(back.bytes == edited(synAck, src: Lab.server, dst: Lab.device))
        #expect(h.state() == .synReceived)
    }

    @Test("one device port to two servers: two flows, two NAT ports")
    func sameDevicePortTwoServers() throws {
        var config = Lab.transparent()
        config.intercepts = [PortRange(8080, 8081)]
        let h = EngineHarness(config)
        let a = Conversation(original: "10.2.0.2:8080", server: "10.2.0.2:8080", nat: "10.2.0.1:61000")
        let b = Conversation(original: "10.2.0.3:8081", server: "10.2.0.3:8081", nat: "10.2.0.1:61001")
        a.deviceSends(h, .syn, seq: 1)
        b.deviceSends(h, .syn, seq: 1)
        b.serverSends(h, [.syn, .ack], seq: 7, ack: 2)
        a.serverSends(h, [.syn, .ack], seq: 9, ack: 2)
        #expect(h.engine.flowCount == 2)
        // The reply of one server to the other's NAT port is refused.
        let crossed = tcp4(src: "10.2.0.3:8081", dst: "10.2.0.1:61000", seq: 8, ack: 2)
        #expect(h.send(crossed).verdict == .drop(.unexpectedSource))
    }
}
