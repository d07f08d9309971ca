import Testing
import TestSupport
import Wire

/// Seeded property tests for IPv6 (like PropertyTests, whose `exercise` calls the two walks
/// below on every input): random and mutated IPv6 bytes never trap the IPv6 views, ICMPv6 or
/// its quote, and NAT66 rewrites of any valid packet keep the TCP checksum.
@Suite struct IPv6PropertyTests {
    /// Parses `buf` as TCP/IPv6 and reads every field; records an issue when a validated view
    /// breaks its invariant. True when the view accepted the bytes.
    static func exerciseTCP6(_ buf: UnsafeMutableRawBufferPointer, seed: UInt64, bytes: [UInt8]) -> Bool {
        guard let packet = try? TCPIPv6Packet(validating: buf) else { return false }
        let ip = packet.ip
        if !(40 <= ip.transportOffset && ip.transportOffset + packet.tcp.bytes.count == ip.totalLength
             && ip.totalLength <= buf.count && ip.transportProtocol == 6 && ip.routingSegmentsLeft == 0) {
            Issue.record("TCP/IPv6 invariant broken, seed \(seed): \(hexString(bytes))")
        }
        _ = (packet.source, packet.destination, packet.datagram.count, packet.verifyChecksums())
        _ = (ip.trafficClass, ip.flowLabel, ip.hopLimit, ip.extensionHeadersLength)
        PropertyTests.exercise(packet.tcp, seed: seed, bytes: bytes)
        return true
    }

    /// Parses `buf` as an ICMPv6 error and as a bare quote, reading every field.
    static func exerciseICMP6(_ buf: UnsafeMutableRawBufferPointer, seed: UInt64, bytes: [UInt8]) -> Bool {
        if let q = try? QuotedTCPv6(validating: buf) { exercise(q, seed: seed, bytes: bytes) }
        guard let m = try? ICMPv6Message(validating: buf) else { return false }
        if !(m.message.count >= 8 && m.ip.transportProtocol == 58) {
            Issue.record("ICMPv6 invariant broken, seed \(seed): \(hexString(bytes))")
        }
        _ = (m.type, m.code, m.checksum, m.parameter, m.kind, m.mtu, m.verifyChecksum, m.quotedBytes.count)
        if let q = try? m.quotedTCP() { exercise(q, seed: seed, bytes: bytes) }
        return true
    }

    static func exercise(_ q: QuotedTCPv6, seed: UInt64, bytes: [UInt8]) {
        if !(q.tcpOffset >= 40 && q.tcpOffset + 8 <= q.bytes.count) {
            Issue.record("quoted TCP/IPv6 invariant broken, seed \(seed): \(hexString(bytes))")
        }
        _ = (q.source, q.destination, q.seq, q.ack, q.flags, q.hasChecksum, q.originalPayloadLength, q.flowLabel)
    }

    static let tcp = Array(TCPIPv6PacketTests.data[40...])
    static let seeds: [[UInt8]] = ICMPv6Fixture.all + [
        Fixture.linuxSYN6, TCPIPv6PacketTests.data,
        IPv6PacketTests.ipv6([IPv6PacketTests.hopByHop, IPv6PacketTests.routing, IPv6PacketTests.destination], transport: tcp),
        IPv6PacketTests.ipv6([IPv6PacketTests.destination, IPv6PacketTests.fragment], transport: tcp),
        ICMPv6Builder.bytes(.packetTooBig(from: address6("2001:db8::1"), to: address6("fd00::2"), mtu: 1280),
                            quoting: IPv6PacketTests.ipv6([IPv6PacketTests.destination], transport: tcp)),
    ]

    @Test func randomIPv6BytesNeverTrap() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7357_0601)
        print("IPv6PropertyTests.randomIPv6BytesNeverTrap seed \(rng.seed)")
        var tcp6 = 0, icmp6 = 0
        for _ in 0..<(5000 * PropertyTests.scale) {
            var b = rng.bytes(Int.random(in: 0...160, using: &rng))
            // Mostly plausible headers: version 6, a payload length inside the bytes, a next
            // header that is TCP, ICMPv6 or an extension header with small lengths.
            if b.count >= 40, Int.random(in: 0..<4, using: &rng) != 0 {
                b[0] = 0x60 | b[0] & 0x0F
                let payload = Int.random(in: 0...(b.count - 40), using: &rng)
                b[4] = 0; b[5] = UInt8(payload)
                b[6] = [0, 6, 6, 6, 43, 44, 58, 58, 60].randomElement(using: &rng)!
                var o = 40
                while o + 8 <= b.count, Bool.random(using: &rng) {
                    b[o] = [6, 43, 44, 58, 60].randomElement(using: &rng)!
                    b[o + 1] = UInt8.random(in: 0...2, using: &rng)
                    o += (Int(b[o + 1]) + 1) * 8
                }
                if o + 13 < b.count { b[o + 12] = UInt8.random(in: 5...8, using: &rng) << 4 }
            }
            let r = PropertyTests.exercise(b, seed: rng.seed)
            tcp6 += r.tcp6 ? 1 : 0; icmp6 += r.icmp6 ? 1 : 0
        }
        print("IPv6PropertyTests.randomIPv6BytesNeverTrap accepted tcp6 \(tcp6) icmp6 \(icmp6)")
        #expect(tcp6 > 300 && icmp6 > 100, "tcp6 \(tcp6) icmp6 \(icmp6)")
    }

    @Test func mutatedIPv6PacketsNeverTrap() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7357_0602)
        print("IPv6PropertyTests.mutatedIPv6PacketsNeverTrap seed \(rng.seed)")
        var accepted = 0
        for _ in 0..<(6000 * PropertyTests.scale) {
            var b = PropertyTests.mutate(Self.seeds.randomElement(using: &rng)!, &rng)
            // Also hit the extension headers', ICMPv6's and the quote's length fields.
            let spots = [40, 41, 48, 49, 52, 54, 56, 57, 64, 65, 80, 81, 88, 89, 94, 100, 101, 112]
            if Bool.random(using: &rng), let at = spots.randomElement(using: &rng), at < b.count {
                b[at] = UInt8.random(in: 0...255, using: &rng)
            }
            let r = PropertyTests.exercise(b, seed: rng.seed)
            accepted += (r.tcp6 || r.icmp6) ? 1 : 0
        }
        #expect(accepted > 1000, "accepted \(accepted)")
    }

    @Test func randomIPv6RewritesKeepTheChecksum() throws {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7357_0603)
        print("IPv6PropertyTests.randomIPv6RewritesKeepTheChecksum seed \(rng.seed)")
        func randomEndpoint() -> IPv6Endpoint {
            IPv6Endpoint(IPv6Address(high: rng.next(), low: rng.next()), UInt16.random(in: 0...65535, using: &rng))
        }
        for _ in 0..<(2000 * PropertyTests.scale) {
            let spec = TCPIPv6PacketSpec(source: randomEndpoint(), destination: randomEndpoint(), seq: SeqNumber(rng.next32()),
                                         ack: SeqNumber(rng.next32()), flags: TCPFlags(rawValue: UInt8.random(in: 0...255, using: &rng)),
                                         window: UInt16.random(in: 0...65535, using: &rng),
                                         options: [.maximumSegmentSize(1440), .timestamp(value: rng.next32(), echoReply: rng.next32())]
                                             .filter { _ in Bool.random(using: &rng) },
                                         trafficClass: UInt8.random(in: 0...255, using: &rng), flowLabel: rng.next32() & 0xF_FFFF)
            var p = TCPPacketBuilder.bytes(spec, payload: rng.bytes(Int.random(in: 0...33, using: &rng)))
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                try withTCP6(&p) { packet in
                    let tcp = packet.tcp
                    switch Int.random(in: 0..<8, using: &rng) {
                    case 0: packet.setSource(randomEndpoint())
                    case 1: packet.setDestination(randomEndpoint())
                    case 2: tcp.setSeq(tcp.seq + rng.next32())
                    case 3: tcp.setAck(SeqNumber(rng.next32()))
                    case 4: tcp.setWindow(UInt16.random(in: 0...65535, using: &rng))
                    case 5: packet.ip.setFlowLabel(rng.next32()) // not in the pseudo-header
                    case 6: packet.ip.decrementHopLimit()
                    default: packet.ip.setTrafficClass(UInt8.random(in: 0...255, using: &rng))
                    }
                }
                if !referenceTCP6Valid(p) { Issue.record("rewrite broke the checksum, seed \(rng.seed): \(hexString(p))"); break }
            }
        }
    }
}
