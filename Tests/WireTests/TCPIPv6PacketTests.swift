import Testing
import TestSupport
import Wire

/// TCP over IPv6 (RFC 8200, RFC 9293): the view, the builder, the checksum over the IPv6
/// pseudo-header (RFC 8200 §8.1) against the textbook reference in IPv6Fixtures.swift.
@Suite struct TCPIPv6PacketTests {
    /// The Linux SYN of `Fixture.linuxSYN6`, as a spec.
    static let linuxSYN6Spec = TCPIPv6PacketSpec(
        source: endpoint6("[fd00:1::2]:40000"), destination: endpoint6("[fd00:2::2]:80"), seq: SeqNumber(0x8627_EF99),
        flags: .syn, window: 64800,
        options: [.maximumSegmentSize(1440), .sackPermitted, .timestamp(value: 0xB7CA_69E7, echoReply: 0), .noOperation, .windowScale(10)],
        hopLimit: 64, flowLabel: 0x0D_92A3)

    /// A data segment with an odd payload, traffic class and flow label set.
    static let data = tcp6(src: "[2001:db8:1::10]:51234", dst: "[2001:db8:2::20]:443", flags: [.psh, .ack],
                           seq: 0x0102_0304, ack: 0xA0B0_C0D0, window: 501,
                           options: [.noOperation, .noOperation, .timestamp(value: 7, echoReply: 9)],
                           payload: Array("hello, world".utf8) + [0xFF], hopLimit: 63, trafficClass: 0xB8, flowLabel: 0xA_BCDE)

    @Test func deconstructsLinuxSYN6() throws {
        var p = Fixture.linuxSYN6
        try withTCP6(&p) { packet in
            #expect(packet.source == endpoint6("[fd00:1::2]:40000"))
            #expect(packet.destination == endpoint6("[fd00:2::2]:80"))
            #expect(packet.tcp.flags == .syn)
            #expect(packet.tcp.options.maximumSegmentSize == 1440)
            #expect(packet.datagram.count == 80)
            #expect(packet.verifyChecksums() == nil)
        }
        #expect(referenceTCP6Valid(Fixture.linuxSYN6))
    }

    @Test func builderReproducesLinuxSYN6ByteForByte() {
        #expect(TCPPacketBuilder.bytes(Self.linuxSYN6Spec) == Fixture.linuxSYN6)
    }

    @Test func buildsTheFixedHeaderAsRFC8200Lays() {
        let p = Self.data
        // Version 6, traffic class 0xb8, flow label 0xabcde: 6 b8 abcde.
        #expect(Array(p[0..<4]) == [0x6B, 0x8A, 0xBC, 0xDE])
        #expect(Int(p[4]) << 8 | Int(p[5]) == p.count - 40)
        #expect(p[6] == 6 && p[7] == 63)
        #expect(Array(p[8..<24]) == hexBytes("2001 0db8 0001 0000 0000 0000 0000 0010"))
        #expect(Array(p[24..<40]) == hexBytes("2001 0db8 0002 0000 0000 0000 0000 0020"))
        #expect(Array(p[40..<44]) == [0xC8, 0x22, 0x01, 0xBB])
        #expect(referenceTCP6Valid(p))
        var q = p
        try? withTCP6(&q) { packet in
            #expect(packet.ip.trafficClass == 0xB8 && packet.ip.flowLabel == 0xA_BCDE && packet.ip.hopLimit == 63)
            #expect(packet.tcp.seq == SeqNumber(0x0102_0304) && packet.tcp.ack == SeqNumber(0xA0B0_C0D0))
            #expect(packet.tcp.window == 501 && packet.tcp.flags == [.psh, .ack])
            #expect(packet.tcp.options.timestamp?.value == 7)
            #expect(Array(packet.tcp.payload) == Array("hello, world".utf8) + [0xFF])
            #expect(packet.verifyChecksums() == nil)
        }
    }

    @Test func builderRefusesWhatDoesNotFit() {
        var spec = Self.linuxSYN6Spec
        var buffer = [UInt8](repeating: 0, count: 70_000)
        spec.flowLabel = 0x10_0000
        #expect(buffer.withUnsafeMutableBytes { b in TCPPacketBuilder.write(spec, payload: UnsafeRawBufferPointer(start: nil, count: 0), into: b) } == nil)
        spec.flowLabel = 0
        let big = [UInt8](repeating: 1, count: 65535 - 40 + 1) // TCP length 65536: needs a jumbogram
        #expect(buffer.withUnsafeMutableBytes { b in big.withUnsafeBytes { TCPPacketBuilder.write(spec, payload: $0, into: b) } } == nil)
        let fits = [UInt8](repeating: 1, count: 65535 - 40)
        #expect(buffer.withUnsafeMutableBytes { b in fits.withUnsafeBytes { TCPPacketBuilder.write(spec, payload: $0, into: b) } } == 65575)
        var small = [UInt8](repeating: 0, count: 79)
        #expect(small.withUnsafeMutableBytes { b in TCPPacketBuilder.write(spec, payload: UnsafeRawBufferPointer(start: nil, count: 0), into: b) } == nil)
    }

    @Test func everyTruncationIsRefused() {
        let withChain = IPv6PacketTests.ipv6([IPv6PacketTests.hopByHop, IPv6PacketTests.destination], transport: Array(Self.data[40...]))
        for p in [Fixture.linuxSYN6, Self.data, withChain] {
            for n in 0..<p.count {
                #expect(tcp6Error(Array(p[0..<n])) == .truncated, "length \(n) of \(p.count)")
            }
            #expect(tcp6Error(p) == nil)
        }
    }

    @Test func payloadLengthCutBelowTheTCPHeader() {
        for length in 0..<20 {
            var p = Fixture.linuxSYN6
            p[4] = 0; p[5] = UInt8(length)
            #expect(tcp6Error(p) == .truncated, "payload length \(length)")
        }
        var q = Fixture.linuxSYN6
        q[52] = 0x40 // data offset 4 words
        #expect(tcp6Error(q) == .badTCPHeaderLength)
        q[52] = 0xF0 // 60 bytes in a 40-byte segment
        #expect(tcp6Error(q) == .truncated)
    }

    @Test func refusesOtherUpperLayersAndFragments() {
        var udp = Fixture.linuxSYN6
        udp[6] = 17
        #expect(tcp6Error(udp) == .notTCP)
        #expect(tcp6Error(IPv6PacketTests.ipv6([IPv6PacketTests.fragment])) == .fragment)
        #expect(tcp6Error(Fixture.linuxSYN) == .badVersion)
    }

    @Test func checksumCoversTheTCPLengthOnlyBehindExtensionHeaders() throws {
        var p = IPv6PacketTests.ipv6([IPv6PacketTests.hopByHop, IPv6PacketTests.routing, IPv6PacketTests.destination],
                                     transport: Array(Self.data[40...]))
        p.replaceSubrange(0..<4, with: Self.data[0..<4])
        p.replaceSubrange(8..<40, with: Self.data[8..<40])
        #expect(referenceTCP6Valid(p, tcpOffset: 40 + 8 + 24 + 16))
        try withTCP6(&p) { packet in
            #expect(packet.ip.transportOffset == 88)
            #expect(packet.verifyChecksums() == nil)
        }
        p[p.count - 1] ^= 0x01
        try withTCP6(&p) { packet in #expect(packet.verifyChecksums() == .badTCPChecksum) }
    }

    /// NAT66: every rewrite keeps the checksum right (against the reference), and the result is
    /// byte for byte what the builder makes for the new endpoints.
    @Test func rewritesKeepTheChecksum() throws {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x8200_0801)
        print("TCPIPv6PacketTests.rewritesKeepTheChecksum seed \(rng.seed)")
        func randomEndpoint() -> IPv6Endpoint {
            IPv6Endpoint(IPv6Address(high: rng.next(), low: rng.next()), UInt16.random(in: 0...65535, using: &rng))
        }
        for _ in 0..<500 {
            var spec = Self.linuxSYN6Spec
            spec.source = randomEndpoint()
            spec.destination = randomEndpoint()
            let payload = rng.bytes(Int.random(in: 0...31, using: &rng))
            var p = TCPPacketBuilder.bytes(spec, payload: payload)
            let source = Bool.random(using: &rng) ? randomEndpoint() : spec.source
            let destination = Bool.random(using: &rng) ? randomEndpoint() : IPv6Endpoint(spec.destination.address, UInt16.random(in: 0...65535, using: &rng))
            try withTCP6(&p) { packet in
                packet.setSource(source)
                packet.setDestination(destination)
            }
            #expect(referenceTCP6Valid(p), "seed \(rng.seed): \(hexString(p))")
            spec.source = source
            spec.destination = destination
            let rebuilt = TCPPacketBuilder.bytes(spec, payload: payload)
            // Equal bytes, except that one's complement has two zeros: 0x0000 and 0xffff.
            var a = p, b = rebuilt
            a[56] = 0; a[57] = 0; b[56] = 0; b[57] = 0
            #expect(a == b)
        }
    }

    @Test func incrementalAddressUpdateMatchesFullRecompute() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x1624_0006)
        for _ in 0..<2000 {
            let old = IPv6Address(high: rng.next(), low: rng.next())
            let new = Int.random(in: 0..<4, using: &rng) == 0 ? IPv6Address(high: 0, low: 0) : IPv6Address(high: rng.next(), low: rng.next())
            var header = rng.bytes(24)
            header[0] = 0x45
            func checksum(_ a: IPv6Address) -> UInt16 {
                let words = a.groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
                return ~referenceSum(header + words)
            }
            let updated = InternetChecksum.update(checksum(old), old: old, new: new)
            let full = checksum(new)
            #expect(updated == full || (updated == 0xFFFF && full == 0) || (updated == 0 && full == 0xFFFF), "seed \(rng.seed)")
        }
    }

    /// Checksum offload (CHECKSUM_PARTIAL): the field holds the folded pseudo-header sum; what
    /// a NIC then does (sum from the TCP header, store the complement) gives a valid packet.
    @Test func partialChecksumIsTheIPv6PseudoHeaderSum() throws {
        var p = Self.data
        try withTCP6(&p) { packet in
            packet.setSource(endpoint6("[fd00:99::1]:62001"))
            packet.refreshPartialChecksum()
        }
        let tcpLength = p.count - 40
        let pseudo = Array(p[8..<40]) + [0, 0, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF), 0, 0, 0, 6]
        #expect(UInt16(p[56]) << 8 | UInt16(p[57]) == referenceSum(pseudo))
        let finished = ~referenceSum(p[40...])
        p[56] = UInt8(finished >> 8); p[57] = UInt8(finished & 0xFF)
        #expect(referenceTCP6Valid(p))
    }

    @Test func familyNeutralSeam() throws {
        var four = Fixture.linuxSYN, six = Fixture.linuxSYN6
        try four.withUnsafeMutableBytes { buf in
            let packet = try TCPIPPacket(validating: buf)
            #expect(packet.family == .ipv4 && packet.ipHeaderLength == 20)
            #expect(packet.source.description == "10.1.0.2:40000" && packet.destination == endpoint("10.2.0.2:80"))
            #expect(packet.verifyChecksums() == nil && packet.tcp.flags == .syn)
        }
        try six.withUnsafeMutableBytes { buf in
            let packet = try TCPIPPacket(validating: buf)
            #expect(packet.family == .ipv6 && packet.ipHeaderLength == 40 && packet.datagram.count == 80)
            #expect(packet.source.description == "[fd00:1::2]:40000" && packet.destination.ipv6 == endpoint6("[fd00:2::2]:80"))
            #expect(packet.source.ipv4 == nil)
            #expect(packet.verifyChecksums() == nil && packet.verifyHeaderChecksumOnly() == nil)
        }
        var empty: [UInt8] = [], five = Fixture.linuxSYN
        five[0] = 0x55
        #expect(throws: WireError.truncated) { try empty.withUnsafeMutableBytes { _ = try TCPIPPacket(validating: $0) } }
        #expect(throws: WireError.badVersion) { try five.withUnsafeMutableBytes { _ = try TCPIPPacket(validating: $0) } }
        #expect(IPFamily.ipv6.headerLength == 40 && IPFamily.ipv4.headerLength == 20 && IPFamily.ipv6.version == 6)
    }
}
