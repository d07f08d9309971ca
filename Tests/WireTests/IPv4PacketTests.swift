import Testing
import TestSupport
import Wire

/// IPv4 header view (RFC 791 §3.1): deconstruct real bytes, construct, refuse malformed input.
@Suite struct IPv4PacketTests {
    @Test func deconstructsLinuxSYN() throws {
        var p = Fixture.linuxSYN
        try withIPv4(&p) { ip in
            #expect(ip.headerLength == 20)
            #expect(ip.totalLength == 60)
            #expect(ip.tos == 0)
            #expect(ip.identification == 0xd4e9)
            #expect(ip.dontFragment)
            #expect(!ip.moreFragments)
            #expect(ip.fragmentOffset == 0)
            #expect(!ip.isFragment)
            #expect(ip.ttl == 64)
            #expect(ip.protocolNumber == 6)
            #expect(ip.headerChecksum == 0x51cc)
            #expect(ip.verifyHeaderChecksum)
            #expect(ip.source == IPv4Address(10, 1, 0, 2))
            #expect(ip.destination == IPv4Address(10, 2, 0, 2))
            #expect(ip.payload.count == 40)
            #expect(ip.payload.first == 0x9c)
            // 0a01 + 0002 + 0a02 + 0002 + 0006 + 0028 (RFC 9293 §3.1 pseudo-header).
            #expect(ip.pseudoHeaderSum(transportLength: 40) == 0x0a01 + 0x0002 + 0x0a02 + 0x0002 + 6 + 40)
        }
    }

    @Test func constructsLinuxSYNByteForByte() {
        let spec = TCPPacketSpec(
            source: IPv4Endpoint(IPv4Address(10, 1, 0, 2), 40000),
            destination: IPv4Endpoint(IPv4Address(10, 2, 0, 2), 80),
            seq: SeqNumber(0x30a7_391f), ack: SeqNumber(0), flags: .syn, window: 64240,
            options: [.maximumSegmentSize(1460), .sackPermitted, .timestamp(value: 0x4393_2b03, echoReply: 0),
                      .noOperation, .windowScale(10)],
            ttl: 64, identification: 0xd4e9, dontFragment: true)
        #expect(hexString(TCPPacketBuilder.bytes(spec)) == hexString(Fixture.linuxSYN))
    }

    @Test func constructsLinuxDataByteForByte() {
        let built = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.psh, .ack],
                         seq: 0x30a7_3920, ack: 0x1122_3345, window: 63,
                         options: [.noOperation, .noOperation, .timestamp(value: 0x4393_2b03, echoReply: 0x0a0b_0c0d)],
                         payload: Array("hello".utf8), id: 0xd4eb)
        #expect(hexString(built) == hexString(Fixture.linuxData))
        let ack = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: .ack, seq: 0x30a7_3920, ack: 0x1122_3345,
                       window: 63, options: [.noOperation, .noOperation, .timestamp(value: 0x4393_2b03, echoReply: 0x0a0b_0c0d)],
                       id: 0xd4ea)
        #expect(hexString(ack) == hexString(Fixture.linuxACK))
    }

    @Test func fixturesHaveRightChecksums() {
        for p in Fixture.all { #expect(referenceValid(p)) }
    }

    @Test func everyTruncationThrowsTruncated() {
        for p in Fixture.all {
            for n in 0..<p.count {
                #expect(ipv4Error(Array(p[0..<n])) == .truncated, "length \(n) of \(p.count)")
            }
            #expect(ipv4Error(p) == nil)
        }
    }

    @Test func truncatedHeaderWithOptionsThrowsTruncated() {
        // IHL 6: a 4-byte router alert option (RFC 2113) precedes the payload.
        let p = headerWithRouterAlert()
        for n in 0..<p.count { #expect(ipv4Error(Array(p[0..<n])) == .truncated, "length \(n)") }
    }

    @Test func readsHeaderOptionsLength() throws {
        var p = headerWithRouterAlert()
        try withIPv4(&p) { ip in
            #expect(ip.headerLength == 24)
            #expect(ip.verifyHeaderChecksum)
            #expect(Array(ip.payload) == [0xAA, 0xBB])
        }
    }

    @Test(arguments: [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] as [UInt8])
    func refusesOtherVersions(version: UInt8) {
        var p = Fixture.linuxSYN
        p[0] = version << 4 | 5
        #expect(ipv4Error(p) == .badVersion)
    }

    @Test(arguments: [0, 1, 2, 3, 4] as [UInt8])
    func refusesHeaderLengthBelowFiveWords(ihl: UInt8) {
        var p = Fixture.linuxSYN
        p[0] = 0x40 | ihl
        #expect(ipv4Error(p) == .badHeaderLength)
    }

    @Test func refusesHeaderLengthBeyondBytes() {
        var p = Fixture.linuxSYN
        p[0] = 0x4F // 60-byte header in a 60-byte buffer: fits; total length 60 >= 60.
        #expect(ipv4Error(p) == nil)
        #expect(ipv4Error(Array(p[0..<59])) == .truncated)
    }

    @Test(arguments: [0, 1, 19])
    func refusesTotalLengthBelowHeader(total: Int) {
        var p = Fixture.linuxSYN
        p[2] = UInt8(total >> 8); p[3] = UInt8(total & 0xFF)
        #expect(ipv4Error(p) == .badTotalLength)
    }

    @Test(arguments: [61, 100, 65535])
    func refusesTotalLengthBeyondBytes(total: Int) {
        #expect(ipv4Error(withTotalLength(Fixture.linuxSYN, total)) == .truncated)
    }

    @Test func ignoresLinkPaddingPastTotalLength() throws {
        var p = Fixture.linuxSYN + [0, 0, 0, 0, 0, 0]
        try withIPv4(&p) { ip in
            #expect(ip.totalLength == 60)
            #expect(ip.payload.count == 40)
        }
        let packet = try DecodedTCP4(p)
        #expect(packet.checksumsValid)
        #expect(packet.payload.isEmpty)
    }

    @Test(arguments: [
        (0x2000 as UInt16, true, 0, true),     // MF, offset 0: first fragment
        (0x0001, false, 8, true),              // offset 8, last fragment
        (0x2001, true, 8, true),               // middle fragment
        (0x1FFF, false, 65528, true),          // largest offset
        (0x4000, false, 0, false),             // DF only: not a fragment
        (0x0000, false, 0, false),
    ])
    func detectsFragments(flagsFragment: UInt16, moreFragments: Bool, offset: Int, isFragment: Bool) throws {
        var p = Fixture.linuxSYN
        p[6] = UInt8(flagsFragment >> 8); p[7] = UInt8(flagsFragment & 0xFF)
        refillIPv4Checksum(&p)
        try withIPv4(&p) { ip in
            #expect(ip.moreFragments == moreFragments)
            #expect(ip.fragmentOffset == offset)
            #expect(ip.isFragment == isFragment)
            #expect(ip.verifyHeaderChecksum)
        }
        #expect(tcp4Error(p) == (isFragment ? .fragment : nil))
    }

    @Test func refusesOtherProtocolsAsTCP() {
        var p = Fixture.linuxSYN
        p[9] = 17
        refillIPv4Checksum(&p)
        #expect(ipv4Error(p) == nil)
        #expect(tcp4Error(p) == .notTCP)
    }

    @Test func detectsBadHeaderChecksum() throws {
        var p = Fixture.linuxSYN
        p[8] = 63 // TTL changed, checksum not
        try withIPv4(&p) { ip in #expect(!ip.verifyHeaderChecksum) }
        let verdict = try withTCP4(&p) { $0.verifyChecksums() }
        #expect(verdict == .badIPChecksum)
    }

    // MARK: Setters keep the header checksum (RFC 1624), checked by a full reference sum.

    @Test func settersKeepHeaderChecksum() throws {
        var p = Fixture.linuxSYN
        try withIPv4(&p) { $0.setSource(IPv4Address(192, 168, 255, 254)) }
        #expect(referenceChecksumsValid(p).ip)
        try withIPv4(&p) { $0.setDestination(IPv4Address(0, 0, 0, 0)) }
        #expect(referenceChecksumsValid(p).ip)
        try withIPv4(&p) { $0.setIdentification(0xFFFF) }
        #expect(referenceChecksumsValid(p).ip)
        try withIPv4(&p) { $0.setTotalLength(40) }
        #expect(referenceChecksumsValid(p).ip)
        try withIPv4(&p) { ip in
            #expect(ip.source == IPv4Address(192, 168, 255, 254))
            #expect(ip.destination == IPv4Address(0, 0, 0, 0))
            #expect(ip.identification == 0xFFFF)
            #expect(ip.totalLength == 40)
        }
    }

    @Test(arguments: [64, 1, 0, 255] as [UInt8])
    func decrementTTLKeepsHeaderChecksum(ttl: UInt8) throws {
        var p = Fixture.linuxSYN
        p[8] = ttl
        refillIPv4Checksum(&p)
        try withIPv4(&p) { $0.decrementTTL() }
        #expect(p[8] == ttl &- 1)
        #expect(referenceChecksumsValid(p).ip)
    }

    @Test func fillHeaderChecksumMatchesCapture() throws {
        var p = Fixture.linuxSYN
        p[10] = 0xDE; p[11] = 0xAD
        try withIPv4(&p) { $0.fillHeaderChecksum() }
        #expect(p == Fixture.linuxSYN)
    }

    /// A 26-byte datagram: IHL 6 with the router alert option 9404 0000, payload AA BB.
    func headerWithRouterAlert() -> [UInt8] {
        var p = hexBytes("4600 001a 0001 0000 4006 0000 0a01 0002 0a02 0002 9404 0000 aabb")
        refillIPv4Checksum(&p)
        return p
    }
}
