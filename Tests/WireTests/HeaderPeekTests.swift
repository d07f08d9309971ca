import Testing
import TestSupport
import Wire

/// Header fields read before validation (shard choice, TUN read sizes, link padding): the
/// values the validating views give, and nil, never a trap, for short or foreign bytes.
@Suite struct HeaderPeekTests {
    static let packet = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:8080", flags: [.syn], seq: 7,
                             options: [.maximumSegmentSize(1460)], payload: [1, 2, 3])

    @Test func agreesWithTheValidatingViews() throws {
        var p = Self.packet
        let view = try withTCP4(&p) { ($0.ip.totalLength, $0.source, $0.destination, $0.tcp.flags) }
        Self.packet.withUnsafeBytes { raw in
            let peek = HeaderPeek(raw)
            #expect(peek.ipVersion == 4)
            #expect(peek.ipv4TotalLength == view.0)
            #expect(peek.declaredLength == view.0)
            let tcp = peek.ipv4TCP
            #expect(tcp?.source == view.1 && tcp?.destination == view.2)
            #expect(tcp?.flags == view.3)
        }
    }

    @Test func everyPrefixIsNilOrRightNeverATrap() {
        let p = Self.packet
        for n in 0...p.count {
            Array(p[0..<n]).withUnsafeBytes { raw in
                let peek = HeaderPeek(raw)
                #expect((peek.ipVersion == nil) == (n == 0))
                #expect((peek.ipv4TotalLength != nil) == (n >= 4))
                // Addresses need the IP header, the flags the TCP header's 14th byte.
                #expect((peek.ipv4TCP != nil) == (n >= 20 + 14))
            }
        }
    }

    @Test func ipv6DeclaresHeaderPlusPayload() {
        var v6 = [UInt8](repeating: 0, count: 8)
        v6[0] = 0x60
        v6[4] = 0x01; v6[5] = 0x00 // payload length 256
        v6.withUnsafeBytes { raw in
            #expect(HeaderPeek(raw).declaredLength == 40 + 256)
            #expect(HeaderPeek(raw).ipv4TotalLength == nil && HeaderPeek(raw).ipv4TCP == nil)
        }
        Array(v6[0..<5]).withUnsafeBytes { #expect(HeaderPeek($0).declaredLength == nil) }
    }

    @Test func foreignProtocolsAndBadHeaderLengthsAreNotTCP() {
        var udp = Self.packet
        udp[9] = 17
        udp.withUnsafeBytes { #expect(HeaderPeek($0).ipv4TCP == nil) }
        var shortIHL = Self.packet
        shortIHL[0] = 0x44 // 16-byte IP header: not a valid one
        shortIHL.withUnsafeBytes { #expect(HeaderPeek($0).ipv4TCP == nil) }
        var longIHL = Self.packet
        longIHL[0] = 0x4F // 60-byte IP header: the TCP flags would be past the bytes we have
        longIHL.withUnsafeBytes { #expect(HeaderPeek($0).ipv4TCP == nil) } // 47 bytes < 60 + 14
    }

    @Test func randomBytesNeverTrap() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x9EE4)
        for _ in 0..<2_000 {
            var bytes = rng.bytes(Int(rng.next() % 80))
            if !bytes.isEmpty && rng.next() % 2 == 0 { bytes[0] = 0x45 }
            bytes.withUnsafeBytes { raw in
                let peek = HeaderPeek(raw)
                _ = (peek.ipVersion, peek.ipv4TotalLength, peek.declaredLength, peek.ipv4TCP)
            }
        }
    }
}
