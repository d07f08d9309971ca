import Testing
import TestSupport
import Wire

/// ICMPv6 errors about TCP (RFC 4443): Linux's own (IPv6Fixtures.swift) and the builder's, the
/// quoted IPv6+TCP header, the checksum over the IPv6 pseudo-header (RFC 4443 §2.3).
@Suite struct ICMPv6MessageTests {
    static func withMessage<R>(_ bytes: inout [UInt8], _ body: (ICMPv6Message) throws -> R) throws -> R {
        try bytes.withUnsafeMutableBytes { buf in try body(try ICMPv6Message(validating: buf)) }
    }

    @Test func linuxPacketTooBig() throws {
        var p = ICMPv6Fixture.packetTooBig
        #expect(p.count == 1280)
        #expect(referenceICMPv6Valid(p))
        try Self.withMessage(&p) { m in
            #expect(m.kind == .packetTooBig && m.mtu == 1280)
            #expect(m.ip.source == address6("fd00:1::1") && m.ip.destination == address6("fd00:1::2"))
            #expect(m.verifyChecksum)
            let q = try m.quotedTCP()
            #expect(q.source == endpoint6("[fd00:1::2]:40001") && q.destination == endpoint6("[fd00:2::2]:80"))
            #expect(q.seq == SeqNumber(0x0CF8_08B9) && q.ack == SeqNumber(0x4E8D_CA93) && q.flags == [.psh, .ack])
            #expect(q.tcpOffset == 40 && q.hasChecksum && q.originalPayloadLength == 4128 && q.flowLabel == 0x9_F755)
        }
    }

    @Test func linuxNoRouteAndHopLimitExceeded() throws {
        var u = ICMPv6Fixture.noRoute, t = ICMPv6Fixture.hopLimitExceeded
        #expect(referenceICMPv6Valid(u) && referenceICMPv6Valid(t))
        try Self.withMessage(&u) { m in
            #expect(m.kind == .destinationUnreachable(code: 0) && m.mtu == nil && m.verifyChecksum)
            let q = try m.quotedTCP()
            #expect(q.source == endpoint6("[fd00:1::2]:40002") && q.destination == endpoint6("[fd00:3::2]:80") && q.flags == .syn)
        }
        try Self.withMessage(&t) { m in
            #expect(m.kind == .timeExceeded(code: 0) && m.verifyChecksum)
            let q = try m.quotedTCP()
            #expect(q.source == endpoint6("[fd00:1::2]:40003") && q.seq == SeqNumber(0x160C_872E))
        }
    }

    @Test func everyFlippedBitFailsTheChecksum() throws {
        let original = ICMPv6Fixture.noRoute
        // Every bit of the pseudo-header's addresses and of the message.
        for byte in Array(8..<40) + Array(40..<original.count) {
            var p = original
            p[byte] ^= 0x10
            guard let m = try? Self.withMessage(&p, { $0.verifyChecksum }) else { continue }
            #expect(!m, "byte \(byte)")
        }
    }

    @Test(arguments: [(1, 0), (1, 1), (1, 3), (1, 4), (1, 6), (2, 0), (3, 0), (3, 1), (4, 0), (4, 1), (128, 0), (133, 0), (143, 0)] as [(UInt8, UInt8)])
    func kinds(type: UInt8, code: UInt8) {
        let kind = ICMPv6ErrorKind(type: type, code: code)
        switch (type, code) {
        case (1, 4): #expect(kind == .portUnreachable)
        case (1, _): #expect(kind == .destinationUnreachable(code: code))
        case (2, _): #expect(kind == .packetTooBig)
        case (3, _): #expect(kind == .timeExceeded(code: code))
        case (4, _): #expect(kind == .parameterProblem(code: code))
        default: #expect(kind == nil) // informational: echo, router solicitation, MLD report
        }
    }

    @Test func builderRoundTripAndLength() throws {
        let original = tcp6(src: "[2001:db8::2]:40000", dst: "[2001:db8:1::5]:443", seq: 1000, ack: 2000,
                            payload: (0..<1400).map { UInt8(truncatingIfNeeded: $0) })
        var p = ICMPv6Builder.bytes(.packetTooBig(from: address6("2001:db8:ff::1"), to: address6("2001:db8::2"), mtu: 1400), quoting: original)
        #expect(p.count == 1280) // as much as fits the minimum MTU (RFC 4443 §2.4 (c))
        #expect(Array(p[48...]) == Array(original[0..<1232]))
        #expect(referenceICMPv6Valid(p))
        try Self.withMessage(&p) { m in
            #expect(m.kind == .packetTooBig && m.mtu == 1400 && m.ip.hopLimit == 64)
            m.setMTU(1300)
            #expect(m.mtu == 1300 && !m.verifyChecksum)
            m.fillChecksum()
            #expect(m.verifyChecksum)
        }
        #expect(referenceICMPv6Valid(p))
        let short = ICMPv6Builder.bytes(.portUnreachable(from: address6("2001:db8:1::5"), to: address6("2001:db8::2")), quoting: original, quoteLength: 48)
        #expect(short.count == 96 && referenceICMPv6Valid(short))
        var s = short
        try Self.withMessage(&s) { m in
            #expect(m.kind == .portUnreachable)
            let q = try m.quotedTCP()
            #expect(!q.hasAck && q.ack == nil && q.flags == nil && !q.hasChecksum)
            q.setAck(SeqNumber(5)) // not quoted: nothing happens
        }
        #expect(s == short)
        var tiny = [UInt8](repeating: 0, count: 95)
        #expect(tiny.withUnsafeMutableBytes { b in original.withUnsafeBytes { ICMPv6Builder.write(.hopLimitExceeded(from: address6("::1"), to: address6("::2")), quoting: $0, quoteLength: 48, into: b) } } == nil)
    }

    /// Translating an error for the other end: the quoted endpoints, seq and ack change, the
    /// quoted TCP checksum stays right (incrementally), then the ICMPv6 checksum is refilled.
    @Test func rewritingTheQuoteKeepsBothChecksums() throws {
        let original = tcp6(src: "[fd00:99::1]:62000", dst: "[2001:db8:1::5]:443", flags: [.psh, .ack],
                            seq: 0xFFFF_FFF0, ack: 77, payload: Array("GET / HTTP/1.1\r\n".utf8))
        var p = ICMPv6Builder.bytes(.packetTooBig(from: address6("2001:db8:ff::1"), to: address6("fd00:99::1"), mtu: 1280), quoting: original)
        try Self.withMessage(&p) { m in
            let q = try m.quotedTCP()
            q.setSource(endpoint6("[2001:db8::2]:40000"))
            q.setDestination(endpoint6("[10::5]:8443"))
            q.setSeq(SeqNumber(12345))
            q.setAck(SeqNumber(0x8000_0000))
            #expect(q.source == endpoint6("[2001:db8::2]:40000") && q.destination == endpoint6("[10::5]:8443"))
            #expect(q.seq == SeqNumber(12345) && q.ack == SeqNumber(0x8000_0000))
            m.fillChecksum()
        }
        let quote = Array(p[48...])
        #expect(referenceTCP6Valid(quote))
        #expect(referenceICMPv6Valid(p))
    }

    @Test func quotesWithExtensionHeadersAndFragments() {
        let tcp = Array(Fixture.linuxSYN6[40...])
        let chained = IPv6PacketTests.ipv6([IPv6PacketTests.destination], transport: tcp)
        var c = chained
        #expect((try? c.withUnsafeMutableBytes { try QuotedTCPv6(validating: $0).tcpOffset }) == 56)
        // A quoted first fragment holds the TCP header; a later one does not.
        let first = IPv6PacketTests.ipv6([(44, [0, 0, 0, 1, 0, 0, 0, 9])], transport: tcp)
        var f = first
        #expect((try? f.withUnsafeMutableBytes { try QuotedTCPv6(validating: $0).source }) == endpoint6("[fd00:1::2]:40000"))
        #expect(quoted6Error(IPv6PacketTests.ipv6([(44, [0, 0, 0, 9, 0, 0, 0, 9])], transport: tcp)) == .quotedNotTCP)
        #expect(quoted6Error(IPv6PacketTests.ipv6([IPv6PacketTests.destination], upper: 17, transport: tcp)) == .quotedNotTCP)
        #expect(quoted6Error(Fixture.linuxSYN) == .quotedMalformed)
        #expect(quoted6Error(IPv6PacketTests.ipv6([IPv6PacketTests.destination, IPv6PacketTests.hopByHop], transport: tcp)) == .quotedMalformed)
        // Cut anywhere before 8 bytes of TCP: truncated, never a trap.
        for n in 0..<(56 + 8) {
            #expect(quoted6Error(Array(chained[0..<n])) == .quotedTruncated, "length \(n)")
        }
        #expect(quoted6Error(Array(chained[0..<64])) == nil)
    }

    @Test func outerPacketRefusals() {
        #expect(icmp6Error(Fixture.linuxSYN6) == .notICMP)
        #expect(icmp6Error(Array(ICMPv6Fixture.noRoute[0..<39])) == .outer(.truncated))
        #expect(icmp6Error(Fixture.linuxSYN) == .outer(.badVersion))
        var short = Array(ICMPv6Fixture.noRoute[0..<47])
        short[4] = 0; short[5] = 7
        #expect(icmp6Error(short) == .truncated)
        // ICMPv6 in a fragment: not parsed.
        let fragmented = IPv6PacketTests.ipv6([(44, [0, 0, 0, 1, 0, 0, 0, 9])], upper: 58, transport: Array(ICMPv6Fixture.noRoute[40...]))
        #expect(icmp6Error(fragmented) == .fragment)
        for n in 0..<ICMPv6Fixture.noRoute.count {
            #expect(icmp6Error(Array(ICMPv6Fixture.noRoute[0..<n])) == .outer(.truncated), "length \(n)")
        }
    }
}
