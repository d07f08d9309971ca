import Testing
import TestSupport
import Wire

/// The shared test helpers do what the other test targets rely on.
@Suite struct TestSupportTests {
    @Test func tcp4RoundTripsThroughDecodedTCP4() throws {
        let blocks = [SackBlock(SeqNumber(10), SeqNumber(20))]
        let p = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.ack, .psh], seq: 0xFFFF_FFFF, ack: 7,
                     window: 512, options: [.timestamp(value: 1, echoReply: 2), .sack(blocks)],
                     payload: Array("GET /".utf8), ttl: 3, id: 99)
        let d = try DecodedTCP4(p)
        #expect(d.source == endpoint("10.1.0.2:40000"))
        #expect(d.destination == endpoint("10.2.0.2:80"))
        #expect(d.flags == [.ack, .psh])
        #expect(d.seq == SeqNumber(0xFFFF_FFFF))
        #expect(d.ack == SeqNumber(7))
        #expect(d.window == 512)
        #expect(d.ttl == 3)
        #expect(d.identification == 99)
        #expect(d.dontFragment)
        #expect(d.payload == Array("GET /".utf8))
        #expect(d.significantOptions == [.timestamp(value: 1, echoReply: 2), .sack(blocks)])
        #expect(d.options.count == 2) // 10 + 10 option bytes: no NOP padding
        #expect(d.timestamp?.echoReply == 2)
        #expect(d.sackBlocks == blocks)
        #expect(d.checksumsValid)
        #expect(referenceValid(p))
        #expect(d.description == "10.1.0.2:40000 > 10.2.0.2:80 P. seq 4294967295 ack 7 win 512 [TS val 1 ecr 2,sack 10-20] len 5")
    }

    @Test func decodesLinuxSYN() throws {
        let d = try DecodedTCP4(Fixture.linuxSYN)
        #expect(d.description == "10.1.0.2:40000 > 10.2.0.2:80 S seq 816265503 ack 0 win 64240 [mss 1460,sackOK,TS val 1133718275 ecr 0,nop,wscale 10] len 0")
        #expect(d.maximumSegmentSize == 1460)
        #expect(d.windowScale == 10)
        #expect(d.sackPermitted)
        #expect(!d.optionsMalformed)
        #expect(d.significantOptions.count == 4)
    }

    @Test func decodedTCP4ReportsBadChecksumsAndOddOptions() throws {
        var p = tcp4(src: "1.1.1.1:1", dst: "2.2.2.2:2", options: [.raw([0xFD, 2]), .raw([0])])
        p[p.count - 1] = 0xEE // after EOL: ignored; but the TCP checksum now fails
        let d = try DecodedTCP4(p)
        #expect(!d.tcpChecksumValid)
        #expect(d.ipChecksumValid)
        #expect(d.options == [.raw([0xFD, 2]), .raw([0])])
        #expect(d.description.hasSuffix("[raw fd02,eol] len 0 (bad tcp checksum)"))
    }

    @Test func decodedTCPThrowsOnMalformedBytes() {
        #expect(throws: WireError.truncated) { try DecodedTCP(Array(Fixture.linuxSYN[0..<30])) }
        var version5 = Fixture.linuxSYN
        version5[0] = 0x55
        #expect(throws: WireError.badVersion) { try DecodedTCP(version5) }
        #expect(throws: WireError.truncated) { try DecodedTCP(Array(Fixture.linuxSYN6[0..<50])) }
    }

    @Test("DecodedTCP reads IPv6 too: hop limit as TTL, traffic class as TOS, the flow label")
    func decodedTCPReadsIPv6() throws {
        let d = try DecodedTCP(tcp6(src: "[fd00:1::2]:40000", dst: "[fd00:2::2]:80", flags: .syn, seq: 7,
                                    hopLimit: 63, trafficClass: 0x2A, flowLabel: 0x12345))
        #expect(d.source == endpoint("[fd00:1::2]:40000") && d.destination == endpoint("[fd00:2::2]:80"))
        #expect(d.ttl == 63 && d.tos == 0x2A && d.flowLabel == 0x12345 && d.dontFragment && d.checksumsValid)
        // And `tcp4` over IPv6 endpoints builds IPv6.
        let built = try DecodedTCP(tcp4(src: endpoint("[fd00:1::2]:1"), dst: endpoint("[fd00:2::2]:2"), seq: 9, ttl: 9))
        #expect(built.source.family == .ipv6 && built.ttl == 9 && built.seq == SeqNumber(9) && built.checksumsValid)
    }

    @Test func withTCP4ThrowsOnMalformedBytes() {
        var p: [UInt8] = [0x45, 0]
        #expect(throws: WireError.truncated) { try withTCP4(&p) { _ in } }
    }

    @Test func tcp6BuildsWhatTheViewReads() throws {
        var p = tcp6(src: "[fd00:1::2]:40000", dst: "[fd00:2::2]:80", flags: [.syn], seq: 5,
                     options: [.maximumSegmentSize(1440)], payload: [1, 2, 3], hopLimit: 9, flowLabel: 0x1_2345)
        #expect(referenceTCP6Valid(p))
        try withTCP6(&p) { packet in
            #expect(packet.source == endpoint6("[fd00:1::2]:40000") && packet.destination.port == 80)
            #expect(packet.tcp.seq == SeqNumber(5) && packet.tcp.options.maximumSegmentSize == 1440)
            #expect(packet.ip.hopLimit == 9 && packet.ip.flowLabel == 0x1_2345 && packet.tcp.payloadLength == 3)
        }
        var four = Fixture.linuxSYN
        #expect(throws: WireError.badVersion) { try withTCP6(&four) { _ in } }
        #expect(address6("fd00::1") == IPv6Address(high: 0xFD00_0000_0000_0000, low: 1))
    }

    @Test func hexRoundTrips() {
        #expect(hexBytes("45 00:0a_FF\n01") == [0x45, 0x00, 0x0A, 0xFF, 0x01])
        #expect(hexString([0x45, 0x00, 0x0A, 0xFF]) == "45000aff")
        #expect(hexBytes(hexString(Fixture.linuxData)) == Fixture.linuxData)
        #expect(hexBytes("") == [])
    }

    @Test func seededGeneratorReproduces() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 43)
        let xs = (0..<4).map { _ in a.next() }
        #expect(xs == (0..<4).map { _ in b.next() })
        #expect(xs != (0..<4).map { _ in c.next() })
        #expect(a.bytes(13).count == 13)
        #expect(SeededGenerator.fromEnvironment("TSMP_TEST_SEED_UNSET_FOR_TEST", defaultSeed: 5).seed == 5)
    }
}
