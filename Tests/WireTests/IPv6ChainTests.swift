import Testing
import TestSupport
import Wire

/// The extension-header rules beyond the walk itself (RFC 8200 §4, RFC 2675), and the IPv6
/// header's setters.
@Suite struct IPv6ChainTests {
    typealias T = IPv6PacketTests

    @Test func hopByHopOnlyFirst() {
        // RFC 8200 §4.3: the hop-by-hop header follows the IPv6 header immediately.
        #expect(ipv6Error(T.ipv6([T.destination, T.hopByHop])) == .badExtensionHeader)
        #expect(ipv6Error(T.ipv6([T.hopByHop, T.hopByHop])) == .badExtensionHeader)
        #expect(ipv6Error(T.ipv6([T.hopByHop, T.destination])) == nil)
    }

    @Test func refusesJumbograms() {
        // Payload length 0 with a hop-by-hop header (RFC 2675 §3), whatever follows.
        var p = Array(Fixture.linuxSYN6[0..<40])
        p[4] = 0; p[5] = 0; p[6] = 0
        #expect(ipv6Error(p) == .jumbogram)
        #expect(ipv6Error(p + [UInt8](repeating: 0, count: 64)) == .jumbogram)
        // A Jumbo Payload option (type 0xC2, length 4) in a hop-by-hop header with a payload length.
        let jumboOption: (UInt8, [UInt8]) = (0, [0, 0, 0xC2, 4, 0, 1, 0, 0])
        #expect(ipv6Error(T.ipv6([jumboOption])) == .jumbogram)
        #expect(tcp6Error(T.ipv6([jumboOption])) == .jumbogram)
        // Payload length 0 without hop-by-hop is just an empty packet.
        var q = Array(Fixture.linuxSYN6[0..<40])
        q[4] = 0; q[5] = 0; q[6] = 59
        #expect(ipv6Error(q) == nil)
        q[6] = 6
        #expect(tcp6Error(q) == .truncated)
    }

    @Test func hopByHopOptionsMustFitTheirHeader() {
        // PadN claiming 5 bytes where 4 are left.
        #expect(ipv6Error(T.ipv6([(0, [0, 0, 1, 5, 0, 0, 0, 0])])) == .badExtensionHeader)
        // An option type with its length byte missing at the header's end (Pad1 x5, then type 1).
        #expect(ipv6Error(T.ipv6([(0, [0, 0, 0, 0, 0, 0, 0, 1])])) == .badExtensionHeader)
        // Pad1 all the way, and router alert (RFC 2711) with PadN: fine.
        #expect(ipv6Error(T.ipv6([(0, [0, 0, 0, 0, 0, 0, 0, 0])])) == nil)
        #expect(ipv6Error(T.ipv6([(0, [0, 0, 5, 2, 0, 0, 1, 0])])) == nil)
    }

    @Test func routingHeaderSegmentsLeft() throws {
        var inTransit = T.routing
        inTransit.1[3] = 1 // segments left 1
        let p = T.ipv6([inTransit])
        try T.withIPv6(p) { ip in #expect(ip.routingSegmentsLeft == 1) }
        // The TCP checksum would cover the final destination, not this one (RFC 8200 §8.1).
        #expect(tcp6Error(p) == .routingHeaderInTransit)
        // At its final destination (segments left 0) the packet is whole TCP.
        #expect(tcp6Error(T.ipv6([T.routing])) == nil)
    }

    @Test func atomicFragmentIsAFragment() {
        // Offset 0, M clear (RFC 6946): still never parsed as TCP.
        let atomic: (UInt8, [UInt8]) = (44, [0, 0, 0, 0, 0, 0, 0, 7])
        #expect(ipv6Error(T.ipv6([atomic])) == .fragment)
        #expect(tcp6Error(T.ipv6([atomic])) == .fragment)
        let later: (UInt8, [UInt8]) = (44, [0, 0, 0x05, 0x08, 0, 0, 0, 7]) // offset 1288
        #expect(tcp6Error(T.ipv6([T.hopByHop, later])) == .fragment)
    }

    @Test func walkReportsFragmentFields() throws {
        let p = T.ipv6([T.destination, (44, [0, 0, 0x05, 0x09, 0xde, 0xad, 0xbe, 0xef])])
        let chain = try p.withUnsafeBytes { raw throws(WireError) in
            try IPv6HeaderChain.walk(raw, first: raw[6], start: 40, end: raw.count)
        }
        #expect(chain.fragment == IPv6Fragment(offset: 1288, moreFragments: true, identification: 0xDEAD_BEEF, headerOffset: 56))
        #expect(chain.extensionHeaders == 2)
        #expect(chain.upperProtocol == 6)
        #expect(chain.upperOffset == 64)
    }

    @Test func otherUpperLayersStopTheWalk() throws {
        // AH (51) and ESP (50) are not walked: what follows is authenticated or encrypted.
        for upper: UInt8 in [17, 50, 51, 58, 59, 135] {
            try T.withIPv6(T.ipv6([T.destination], upper: upper)) { ip in
                #expect(ip.transportProtocol == upper)
                #expect(ip.transportOffset == 56)
            }
            #expect(tcp6Error(T.ipv6([T.destination], upper: upper)) == .notTCP)
        }
    }

    @Test func settersChangeOnlyTheirField() throws {
        var p = Fixture.linuxSYN6
        try p.withUnsafeMutableBytes { buf in
            let ip = try IPv6Packet(validating: buf)
            ip.setTrafficClass(0xB9)
            ip.setFlowLabel(0xF_FFFF)
            #expect(ip.trafficClass == 0xB9 && ip.flowLabel == 0xF_FFFF && buf[0] >> 4 == 6)
            ip.setFlowLabel(0x1235_6789) // only 20 bits are kept
            #expect(ip.flowLabel == 0x5_6789 && ip.trafficClass == 0xB9)
            ip.setHopLimit(2)
            ip.decrementHopLimit()
            #expect(ip.hopLimit == 1)
            ip.setSource(address6("2001:db8::1"))
            ip.setDestination(address6("2001:db8:ffff::abcd"))
            #expect(ip.source == address6("2001:db8::1") && ip.destination == address6("2001:db8:ffff::abcd"))
            #expect(ip.trafficClass == 0xB9)
        }
        // Bytes outside the fields are untouched.
        #expect(Array(p[40...]) == Array(Fixture.linuxSYN6[40...]))
        #expect(p[4] == 0 && p[5] == 40 && p[6] == 6)
    }
}

/// HeaderPeek's IPv6 accessors: the same answers as the views, nil instead of errors.
@Suite struct HeaderPeekIPv6Tests {
    static func peek<R>(_ bytes: [UInt8], _ body: (HeaderPeek) -> R) -> R {
        bytes.withUnsafeBytes { body(HeaderPeek($0)) }
    }

    @Test func tcpBehindExtensionHeaders() {
        let p = IPv6PacketTests.ipv6([IPv6PacketTests.hopByHop, IPv6PacketTests.destination])
        let seen = Self.peek(p) { $0.ipv6TCP }
        #expect(seen?.source == endpoint6("[fd00:1::2]:40000") && seen?.destination == endpoint6("[fd00:2::2]:80") && seen?.flags == .syn)
        #expect(Self.peek(IPv6PacketTests.ipv6([IPv6PacketTests.fragment])) { $0.ipv6TCP } == nil)
        #expect(Self.peek(Fixture.linuxSYN) { $0.ipv6TCP } == nil)
        #expect(Self.peek(ICMPv6Fixture.noRoute) { $0.ipv6TCP } == nil)
        for n in 0..<(p.count) {
            let cut = Self.peek(Array(p[0..<n])) { $0.ipv6TCP }
            #expect((cut != nil) == (n > 40 + 8 + 16 + 13), "length \(n)")
        }
    }

    @Test func quotedTCPOfICMPv6() {
        let seen = Self.peek(ICMPv6Fixture.packetTooBig) { $0.ipv6ICMPQuotedTCP }
        #expect(seen?.source == endpoint6("[fd00:1::2]:40001") && seen?.destination == endpoint6("[fd00:2::2]:80"))
        #expect(Self.peek(Fixture.linuxSYN6) { $0.ipv6ICMPQuotedTCP } == nil)
        for n in 0..<92 { #expect(Self.peek(Array(ICMPv6Fixture.noRoute[0..<n])) { $0.ipv6ICMPQuotedTCP } == nil, "length \(n)") }
        #expect(Self.peek(Array(ICMPv6Fixture.noRoute[0..<92])) { $0.ipv6ICMPQuotedTCP } != nil)
    }
}
