import Testing
import TestSupport
import Wire

/// IPv6 header and extension-header chain (RFC 8200 §3, §4).
@Suite struct IPv6PacketTests {
    /// The TCP SYN carried by the captured IPv6 packet.
    static let tcpSYN = Array(Fixture.linuxSYN6[40...])

    // Extension headers with the next-header byte left 0 (filled by `ipv6`).
    static let hopByHop: (UInt8, [UInt8]) = (0, [0, 0, 1, 4, 0, 0, 0, 0]) // PadN
    static let routing: (UInt8, [UInt8]) = (43, [0, 2, 253, 0] + [UInt8](repeating: 0, count: 20)) // segments left 0
    static let destination: (UInt8, [UInt8]) = (60, [0, 1, 1, 12] + [UInt8](repeating: 0, count: 12)) // PadN
    static let fragment: (UInt8, [UInt8]) = (44, [0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]) // offset 0, M=1

    /// The captured packet with `extensions` inserted between the fixed header and TCP, the
    /// next-header bytes chained and the payload length set.
    static func ipv6(_ extensions: [(UInt8, [UInt8])], upper: UInt8 = 6, transport: [UInt8] = tcpSYN) -> [UInt8] {
        var header = Array(Fixture.linuxSYN6[0..<40])
        var chain: [UInt8] = []
        for (i, ext) in extensions.enumerated() {
            var bytes = ext.1
            bytes[0] = i + 1 < extensions.count ? extensions[i + 1].0 : upper
            chain += bytes
        }
        header[6] = extensions.first?.0 ?? upper
        let payloadLength = chain.count + transport.count
        header[4] = UInt8(payloadLength >> 8); header[5] = UInt8(payloadLength & 0xFF)
        return header + chain + transport
    }

    static func withIPv6<R>(_ bytes: [UInt8], _ body: (IPv6Packet) throws -> R) throws -> R {
        var b = bytes
        return try b.withUnsafeMutableBytes { try body(try IPv6Packet(validating: $0)) }
    }

    @Test func deconstructsLinuxSYN6() throws {
        try Self.withIPv6(Fixture.linuxSYN6) { ip in
            #expect(ip.payloadLength == 40)
            #expect(ip.totalLength == 80)
            #expect(ip.nextHeader == 6)
            #expect(ip.transportProtocol == 6)
            #expect(ip.transportOffset == 40)
            #expect(ip.hopLimit == 64)
            #expect(ip.trafficClass == 0)
            #expect(ip.flowLabel == 0x0d_92a3)
            #expect(ip.source == IPv6Address(high: 0xfd00_0001_0000_0000, low: 2))
            #expect(ip.destination == IPv6Address(high: 0xfd00_0002_0000_0000, low: 2))
            #expect(ip.source.description == "fd00:1::2")
            #expect(Array(ip.payload) == Self.tcpSYN)
            let tcp = try TCPSegment(validating: ip.payload)
            #expect(tcp.sourcePort == 40000)
            #expect(tcp.destinationPort == 80)
            #expect(tcp.seq == SeqNumber(0x8627_ef99))
            #expect(tcp.flags == .syn)
            #expect(tcp.window == 64800)
            #expect(tcp.options.maximumSegmentSize == 1440)
            #expect(tcp.options.windowScale == 10)
            #expect(tcp.verifyChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: tcp.bytes.count)))
        }
    }

    @Test func readsTrafficClassAndFlowLabel() throws {
        var p = Fixture.linuxSYN6
        p[0] = 0x6B; p[1] = 0x81; p[2] = 0x23; p[3] = 0x45 // traffic class 0xb8 (EF), flow 0x12345
        try Self.withIPv6(p) { ip in
            #expect(ip.trafficClass == 0xB8)
            #expect(ip.flowLabel == 0x1_2345)
        }
    }

    @Test(arguments: [
        [hopByHop], [routing], [destination],
        [hopByHop, destination, routing, destination],
        [hopByHop] + Array(repeating: destination, count: 7), // 8: the walk's bound
    ].map { ExtensionChain($0) })
    func walksExtensionHeaders(chain: ExtensionChain) throws {
        let p = Self.ipv6(chain.headers)
        let chainLength = chain.headers.reduce(0) { $0 + $1.1.count }
        try Self.withIPv6(p) { ip in
            #expect(ip.nextHeader == chain.headers[0].0)
            #expect(ip.transportProtocol == 6)
            #expect(ip.transportOffset == 40 + chainLength)
            #expect(Array(ip.payload) == Self.tcpSYN)
            // The upper-layer checksum covers the TCP length only (RFC 8200 §8.1).
            let tcp = try TCPSegment(validating: ip.payload)
            #expect(tcp.verifyChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: tcp.bytes.count)))
        }
    }

    @Test func refusesNineExtensionHeaders() {
        #expect(ipv6Error(Self.ipv6([Self.hopByHop] + Array(repeating: Self.destination, count: 8))) == .badExtensionHeader)
    }

    @Test(arguments: [
        [fragment], [hopByHop, fragment], [routing, destination, fragment],
        [hopByHop] + Array(repeating: destination, count: 7) + [fragment], // fragment right after the walk's bound
    ].map { ExtensionChain($0) })
    func refusesFragmentHeader(chain: ExtensionChain) {
        #expect(ipv6Error(Self.ipv6(chain.headers)) == .fragment)
    }

    @Test func refusesChainRunningPastTheEnd() {
        // Routing header claiming 24 bytes with 16 left in the payload.
        var p = Self.ipv6([Self.routing], transport: [])
        p = Array(p[0..<(40 + 16)])
        p[4] = 0; p[5] = 16
        #expect(ipv6Error(p) == .badExtensionHeader)
        // Fewer than 8 bytes left for an extension header.
        var q = Self.ipv6([Self.hopByHop], transport: [])
        q = Array(q[0..<44])
        q[5] = 4
        #expect(ipv6Error(q) == .badExtensionHeader)
        // Header length 255 (2048 bytes) inside a short packet.
        var r = Self.ipv6([Self.destination])
        r[41] = 255
        #expect(ipv6Error(r) == .badExtensionHeader)
    }

    @Test func acceptsNoNextHeaderAfterChain() throws {
        try Self.withIPv6(Self.ipv6([Self.destination], upper: 59, transport: [])) { ip in
            #expect(ip.transportProtocol == 59)
            #expect(ip.transportOffset == 56)
            #expect(ip.payload.isEmpty)
        }
    }

    @Test func everyTruncationThrowsTruncated() {
        for p in [Fixture.linuxSYN6, Self.ipv6([Self.hopByHop, Self.routing, Self.destination])] {
            for n in 0..<p.count {
                #expect(ipv6Error(Array(p[0..<n])) == .truncated, "length \(n) of \(p.count)")
            }
            #expect(ipv6Error(p) == nil)
        }
    }

    @Test(arguments: [0, 4, 5, 7, 15] as [UInt8])
    func refusesOtherVersions(version: UInt8) {
        var p = Fixture.linuxSYN6
        p[0] = version << 4
        #expect(ipv6Error(p) == .badVersion)
    }

    @Test func ignoresBytesPastPayloadLength() throws {
        try Self.withIPv6(Fixture.linuxSYN6 + [1, 2, 3]) { ip in
            #expect(ip.totalLength == 80)
            #expect(ip.payload.count == 40)
        }
    }
}

/// A chain of extension headers as a test argument (type, bytes).
struct ExtensionChain: Sendable, CustomTestStringConvertible {
    let headers: [(UInt8, [UInt8])]
    init(_ headers: [(UInt8, [UInt8])]) { self.headers = headers }
    var testDescription: String { headers.map { String($0.0) }.joined(separator: ",") }
}
