@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// ICMP errors about managed flows (RFC 5508 §4, RFC 1191, RFC 5927), packet by packet: the
/// router behind the gateway with a 1400-byte link that black-holed uploads, the closed port
/// whose "port unreachable" never reached the connecting device, the checks that keep forged
/// errors out, and the proxy's own segments during a migration.
@Suite("ICMP errors of managed flows")
struct ICMPTranslationTests {
    let c = Conversation()
    static let router = address("10.9.0.1")
    static let deviceRouter = address("10.1.0.1")

    /// An established flow (device ISN 1000, server ISN 5000) on which the device sent one
    /// 1448-byte segment; returns the segment as the device sent it and as the server-side
    /// router saw it (after NAT).
    func uploading(_ h: EngineHarness) -> (device: [UInt8], wire: [UInt8]) {
        c.handshake(h)
        let p = c.device([.psh, .ack], seq: 1001, ack: 5001, payload: pattern(1448))
        let out = h.send(p)
        #expect(out.verdict == .forward)
        return (p, out.bytes)
    }

    /// The error as the engine wrote it, with its checksums checked.
    func decoded(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws
        -> (source: IPv4Address, destination: IPv4Address, type: UInt8, code: UInt8, mtu: UInt16?, quote: [UInt8]) {
        var b = bytes
        return try b.withUnsafeMutableBytes { buf in
            let m = try ICMPv4Message(validating: buf)
            #expect(m.ip.verifyHeaderChecksum, sourceLocation: sourceLocation)
            #expect(m.verifyChecksum, sourceLocation: sourceLocation)
            return (m.ip.source, m.ip.destination, m.type, m.code, m.nextHopMTU, Array(m.quotedBytes))
        }
    }

    // MARK: The two failures seen in the lab

    @Test("fragmentation needed for an upload segment reaches the device, quoting its own segment")
    func fragmentationNeededReachesTheDevice() throws {
        let h = EngineHarness(Lab.transparent())
        let (device, wire) = uploading(h)
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.router, to: Lab.nat, mtu: 1400), quoting: wire)
        let out = h.send(error)
        #expect(out.verdict == .forward)
        let d = try decoded(out.bytes)
        #expect(d.source == Self.router && d.destination == address("10.1.0.2"))
        #expect(d.type == 3 && d.code == 4 && d.mtu == 1400)
        // The quote is the device's own segment, byte for byte (checksums included), as far as quoted.
        #expect(d.quote == Array(device[0..<d.quote.count]))
        #expect(h.internalFlow()?.pathMTU?.towardServer == 1400)
        #expect(h.engine.counters.icmpErrorsTranslated == 1)
    }

    @Test("port unreachable for the SYN reaches the connecting device at once")
    func portUnreachableForTheSyn() throws {
        let h = EngineHarness(Lab.transparent())
        let syn = c.device(.syn, seq: 1000, options: [.maximumSegmentSize(1460)])
        let wire = h.send(syn).bytes
        let error = ICMPv4Builder.bytes(.portUnreachable(from: address("10.2.0.2"), to: Lab.nat), quoting: wire, quoteLength: 28)
        let out = h.send(error)
        #expect(out.verdict == .forward)
        let d = try decoded(out.bytes)
        #expect(d.source == address("10.2.0.2") && d.destination == address("10.1.0.2"))
        #expect(d.type == 3 && d.code == 3)
        #expect(d.quote == Array(syn[0..<28]))
    }

    @Test("time exceeded (a routing loop or a short TTL behind the gateway) reaches the device, type and code kept")
    func timeExceededReachesTheDevice() throws {
        let h = EngineHarness(Lab.transparent())
        let (device, wire) = uploading(h)
        let error = ICMPv4Builder.bytes(ICMPv4ErrorSpec(source: Self.router, destination: Lab.nat, type: 11, code: 0), quoting: wire, quoteLength: 28)
        let out = h.send(error)
        #expect(out.verdict == .forward)
        let d = try decoded(out.bytes)
        #expect(d.destination == address("10.1.0.2") && d.type == 11 && d.code == 0 && d.mtu == nil)
        #expect(d.quote == Array(device[0..<28]))
        #expect(h.internalFlow()?.pathMTU == nil)
    }

    @Test("service mode: the server's own error speaks as the VIP, the quote as the device sent it")
    func serviceModeSpeaksAsTheVIP() throws {
        let h = EngineHarness(Lab.service())
        let s = Conversation(original: Lab.vip)
        let syn = s.device(.syn, seq: 1000)
        let wire = h.send(syn).bytes
        let out = h.send(ICMPv4Builder.bytes(.portUnreachable(from: address("10.2.0.2"), to: Lab.nat), quoting: wire))
        #expect(out.verdict == .forward)
        let d = try decoded(out.bytes)
        #expect(d.source == address("10.9.9.9") && d.destination == address("10.1.0.2"))
        #expect(d.quote == Array(syn[0..<d.quote.count]))
    }

    // MARK: Sequence spaces

    @Test("after a splice the quoted sequence and ack numbers go back through the flow's offsets")
    func quotedSequenceNumbersAreMappedBack() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        h.modifyFlow { f in
            f.toServer.seqOffset = SequenceOffset(delta: 70_000)
            f.toDevice.seqOffset = SequenceOffset(delta: 3_000)
        }
        let p = c.device([.psh, .ack], seq: 1001, ack: 8001, payload: pattern(1448))
        let wire = h.send(p).bytes
        let w = try DecodedTCP4(wire)
        #expect(w.seq == SeqNumber(71_001) && w.ack == SeqNumber(5001))
        let out = h.send(ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.router, to: Lab.nat, mtu: 1280), quoting: wire))
        #expect(out.verdict == .forward)
        let d = try decoded(out.bytes)
        #expect(d.quote == Array(p[0..<d.quote.count]))
    }

    // MARK: Validation (RFC 5508 §4.1, RFC 5927 §4.1)

    @Test("errors that match no live flow, lie about the sequence number or are malformed are dropped and counted")
    func forgedAndMalformedErrorsAreDropped() throws {
        let h = EngineHarness(Lab.transparent())
        let (_, wire) = uploading(h)
        func error(_ quote: [UInt8], to: IPv4Address = Lab.nat) -> [UInt8] {
            ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.router, to: to, mtu: 1400), quoting: quote)
        }
        // Another NAT port (no flow), another server behind the same port.
        #expect(h.send(error(tcp4(src: "10.2.0.1:61001", dst: Lab.server, seq: 1001))).verdict == .drop(.icmpNoFlow))
        #expect(h.send(error(tcp4(src: Lab.firstNAT, dst: "10.2.0.3:8080", seq: 1001))).verdict == .drop(.icmpNoFlow))
        // A sequence number the device never sent, or one already acknowledged.
        #expect(h.send(error(tcp4(src: Lab.firstNAT, dst: Lab.server, seq: 900_000))).verdict == .drop(.icmpOutOfWindow))
        h.send(c.server(.ack, seq: 5001, ack: 2449))
        #expect(h.send(error(wire)).verdict == .drop(.icmpOutOfWindow))
        // A wrong ICMP checksum.
        var bad = error(tcp4(src: Lab.firstNAT, dst: Lab.server, seq: 2449))
        bad[22] ^= 0xFF
        #expect(h.send(bad).verdict == .drop(.badICMPChecksum))
        // Truncated: the quote ends inside its IP header (not the proxy's to judge: passed on,
        // the kernel drops it); the ICMP header itself cut (dropped).
        #expect(h.send(error(Array(wire[0..<12]))).verdict == .passThrough)
        var cut = Array(error(wire)[0..<24])
        cut[2] = 0; cut[3] = 24
        #expect(h.send(cut).verdict == .drop(.icmpMalformed))
        // An echo request to the NAT address, an error about UDP or about the gateway's own
        // connection from the NAT address (a port outside the NAT range): the gateway's, passed on.
        var echo = error(wire)
        echo[20] = 8; echo[21] = 0
        #expect(h.send(echo).verdict == .passThrough)
        var udp = Array(wire[0..<28])
        udp[9] = 17
        #expect(h.send(error(udp)).verdict == .passThrough)
        #expect(h.send(error(tcp4(src: "10.2.0.1:22", dst: "10.2.0.2:50000", seq: 1))).verdict == .passThrough)
        #expect(h.engine.counters.icmpErrorsTranslated == 0)
        #expect(h.internalFlow()?.pathMTU == nil)
        let drops = h.engine.status().drops
        #expect(drops["icmp_no_flow"] == 2 && drops["icmp_out_of_window"] == 2 && drops["bad_icmp_checksum"] == 1)
        #expect(drops["icmp_malformed"] == 1)
    }

    @Test("ICMP is told from TCP after the IPv4 header is checked: a fragment of an error is malformed, a bad header its own reason")
    func icmpAfterTheIPv4Check() throws {
        let h = EngineHarness(Lab.transparent())
        let (_, wire) = uploading(h)
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.router, to: Lab.nat, mtu: 1400), quoting: wire)
        var fragment = error
        fragment[6] = 0x20 // more fragments
        #expect(h.send(fragment).verdict == .drop(.icmpMalformed))
        var badHeader = error
        badHeader[0] = 0x44 // IHL 4: shorter than the fixed header
        #expect(h.send(badHeader).verdict == .drop(.badIPHeaderLength))
        #expect(h.send(error).verdict == .forward)
        #expect(h.engine.counters.icmpErrorsTranslated == 1)
    }

    @Test("every truncation of a translated error is dropped or passed on untranslated, never a trap")
    func everyTruncationIsHandled() throws {
        let h = EngineHarness(Lab.transparent())
        let (_, wire) = uploading(h)
        let full = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.router, to: Lab.nat, mtu: 1400), quoting: wire, quoteLength: 48)
        for n in 0..<full.count {
            var b = Array(full[0..<n])
            if n >= 4 { b[2] = UInt8(n >> 8); b[3] = UInt8(n & 0xFF) }
            let out = h.send(b)
            switch out.verdict {
            case .drop: break
            case .passThrough: #expect(out.bytes == b)
            default: Issue.record("a \(n)-byte prefix was translated")
            }
        }
    }

    @Test("a device's ping and errors about unmanaged flows pass through untouched")
    func unmanagedICMPPassesThrough() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        let ping = ICMPv4Builder.bytes(ICMPv4ErrorSpec(source: address("10.1.0.2"), destination: address("8.8.8.8"), type: 8, code: 0), quoting: [])
        #expect(h.send(ping).verdict == .passThrough)
        let foreign = tcp4(src: "1.2.3.4:443", dst: "10.1.0.2:40001", seq: 1)
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.deviceRouter, to: address("1.2.3.4"), mtu: 1400), quoting: foreign)
        let out = h.send(error)
        #expect(out.verdict == .passThrough && out.bytes == error)
    }

    @Test("at most the limiter's burst is translated at one instant; the rest is dropped and counted")
    func rateLimited() throws {
        let h = EngineHarness(Lab.transparent())
        let (_, wire) = uploading(h)
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.router, to: Lab.nat, mtu: 1400), quoting: wire)
        var forwarded = 0
        for _ in 0..<250 where h.send(error).verdict == .forward { forwarded += 1 }
        #expect(forwarded == 200)
        #expect(h.engine.status().drops["icmp_rate_limited"] == 50)
        h.advance(nanoseconds: 10_000_000) // 10 ms: 10 more
        forwarded = 0
        for _ in 0..<20 where h.send(error).verdict == .forward { forwarded += 1 }
        #expect(forwarded == 10)
    }

    // MARK: Toward the device

    @Test("an error about a segment toward the device reaches the server as NAT; the proxy's own splits obey the path MTU")
    func deviceSideErrorReachesTheServer() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        let segment = c.server([.psh, .ack], seq: 5001, ack: 1001, payload: pattern(1448))
        let toDevice = h.send(segment).bytes
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.deviceRouter, to: address("10.2.0.2"), mtu: 1000), quoting: toDevice)
        let out = h.send(error)
        #expect(out.verdict == .forward)
        let d = try decoded(out.bytes)
        #expect(d.source == Lab.nat && d.destination == address("10.2.0.2") && d.mtu == 1000)
        #expect(d.quote == Array(segment[0..<d.quote.count]))
        #expect(h.internalFlow()?.pathMTU?.towardDevice == 1000)
        // The server's next full-sized segment (sent before it learned) leaves in pieces that fit.
        let next = h.send(c.server([.psh, .ack], seq: 6449, ack: 1001, payload: pattern(1448, from: 1448)))
        #expect(next.verdict == .consumed)
        let pieces = try next.generated.map { try DecodedTCP4($0) }
        #expect(pieces.count == 2 && pieces.allSatisfy { $0.payload.count <= 960 && $0.checksumsValid })
        #expect(pieces.flatMap(\.payload) == pattern(1448, from: 1448))
    }

    @Test("a fragmentation needed below the floor does not shrink the proxy's segments below 552 bytes")
    func tinyMTUIsFloored() throws {
        let h = EngineHarness(Lab.transparent())
        c.handshake(h)
        let toDevice = h.send(c.server([.psh, .ack], seq: 5001, ack: 1001, payload: pattern(1448))).bytes
        h.send(ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.deviceRouter, to: address("10.2.0.2"), mtu: 68), quoting: toDevice))
        let next = h.send(c.server([.psh, .ack], seq: 6449, ack: 1001, payload: pattern(1448)))
        let pieces = try next.generated.map { try DecodedTCP4($0) }
        #expect(pieces.count == 3 && pieces.allSatisfy { $0.payload.count == 512 || $0.payload.count == 424 })
    }

    // MARK: Shards

    @Test("an error is sharded by the segment it quotes")
    func shardKeyOfAnError() {
        let wire = tcp4(src: "10.2.0.1:61234", dst: Lab.server, seq: 1)
        let up = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.router, to: Lab.nat, mtu: 1400), quoting: wire)
        up.withUnsafeBytes { #expect(ShardKey($0, nat: Lab.nat, natPorts: EngineConfig.defaultNATPorts) == .natPort(61234)) }
        let down = ICMPv4Builder.bytes(.fragmentationNeeded(from: Self.deviceRouter, to: address("10.2.0.2"), mtu: 1400),
                                       quoting: tcp4(src: Lab.server, dst: Lab.device, seq: 1))
        down.withUnsafeBytes {
            #expect(ShardKey($0, nat: Lab.nat, natPorts: EngineConfig.defaultNATPorts)
                == .device(source: endpoint(Lab.device), destination: endpoint(Lab.server), openingSyn: false))
        }
    }
}

/// The proxy's own segments during a migration (DESIGN §6 step 4): an error about them is the
/// proxy's to act on, not the server's.
@Suite("ICMP errors during a migration")
struct ICMPMigrationTests {
    typealias H = MigrationHarness
    let cut = 2 * 1448

    @Test("fragmentation needed for the emulated sender's segment: it shrinks its segments, resends, and the phone gets every byte")
    func emulatedSenderObeysThePathMTU() throws {
        let h = H.established(downloaded: cut, acked: cut)
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        #expect(h.report(mid)?.phase == .oldDeviceCut)
        let cached = 8 * 1448
        for o in h.serverSends(cut, cut + cached, ack: 120) { #expect(o.verdict == .consumed) }
        #expect(h.send(h.phoneSyn()).verdict == .consumed)
        let connected = h.send(h.fromPhone(at: 0, ack: cut))
        let flight = connected.generated.filter { (try? DecodedTCP4($0))?.payload.isEmpty == false }
        let first = try #require(flight.first)
        #expect(try DecodedTCP4(first).payload.count == 1448)
        // The phone's link takes 1400 bytes: its router answers the proxy's segment (sent as the server).
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: address("10.3.0.1"), to: address("10.2.0.2"), mtu: 1400),
                                        quoting: first)
        let out = h.send(error)
        #expect(out.verdict == .consumed)
        #expect(h.engine.counters.icmpErrorsAbsorbed == 1 && h.engine.counters.icmpErrorsTranslated == 0)
        #expect(h.sender?.mss == 1400 - 40 - 12)
        let again = try out.packets().filter { !$0.payload.isEmpty }
        #expect(!again.isEmpty)
        #expect(again.allSatisfy { $0.payload.count <= 1348 && $0.destination == MigrationLab.phone && $0.checksumsValid })
        #expect(again.first.map { h.serverOffset($0.seq) } == cut)
        // The phone receives everything (the first flight lost on the way) and the flow is spliced.
        var receiver = StreamReceiver()
        try h.phoneDrains(try out.packets(), into: &receiver, cut: cut)
        #expect(difference(receiver.stream(cut, cut + cached), serverBytes(cut..<(cut + cached))) == nil)
        #expect(h.report(mid)?.phase == .spliced)
    }

    @Test("the SYN-ACK to the new device offers an MSS within the path MTU learned toward the server")
    func synAckOffersTheLearnedPathMSS() throws {
        let h = H.established(downloaded: cut, acked: cut)
        // The laptop's upload met a 1400-byte link behind the gateway.
        let upload = h.send(h.fromLaptop(at: 120, ack: cut, length: 1448))
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: address("10.9.0.1"), to: MigrationLab.nat.address.ipv4!, mtu: 1400),
                                        quoting: upload.bytes)
        let translated = h.send(error)
        #expect(translated.verdict == .forward)
        #expect(h.internalFlow?.pathMTU?.towardServer == 1400)
        h.send(h.fromServer(at: cut, ack: 120 + 1448))
        let (_, _) = try h.migrate()
        _ = try h.timers()
        let synAck = try #require(try h.send(h.phoneSyn()).packets().first { $0.flags.contains(.syn) })
        #expect(synAck.maximumSegmentSize == 1360)
    }

    @Test("fragmentation needed for the new device's data during the drain goes to the new device, in its own sequence space")
    func serverSideErrorGoesToTheNewDevice() throws {
        let h = H.established(downloaded: cut, acked: cut)
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        for o in h.serverSends(cut, cut + 4 * 1448, ack: 120) { #expect(o.verdict == .consumed) }
        _ = try h.phoneConnects(cut: cut)
        #expect(h.report(mid)?.phase == .newDeviceConnected)
        // The phone sends its first bytes (the device-side stream continues at 120).
        let data = h.fromPhone(at: 0, ack: cut, length: 1448, streamBase: 120)
        let forwarded = h.send(data)
        #expect(forwarded.verdict == .forward)
        let wire = try DecodedTCP4(forwarded.bytes)
        #expect(wire.seq == SeqNumber(h.l(120)) && wire.source == MigrationLab.nat)
        let error = ICMPv4Builder.bytes(.fragmentationNeeded(from: address("10.9.0.1"), to: MigrationLab.nat.address.ipv4!, mtu: 1400),
                                        quoting: forwarded.bytes, quoteLength: 48)
        let out = h.send(error)
        #expect(out.verdict == .forward)
        var bytes = out.bytes
        try bytes.withUnsafeMutableBytes { buf in
            let m = try ICMPv4Message(validating: buf)
            #expect(.v4(m.ip.destination) == MigrationLab.phone.address && m.verifyChecksum && m.nextHopMTU == 1400)
            let q = try m.quotedTCP()
            #expect(IPEndpoint(q.source) == MigrationLab.phone && IPEndpoint(q.destination) == MigrationLab.server)
            #expect(q.seq == SeqNumber(h.p(0)))
        }
        // The quoted IP header is the phone's own, checksum included.
        #expect(Array(out.bytes[28..<48]) == Array(data[0..<20]))
    }
}
