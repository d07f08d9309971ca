import Testing
import TestSupport
import Wire

/// Seeded property tests: untrusted bytes never trap any parser or option walk, and rewrites of
/// any valid packet keep both checksums. Rerun a failure with `TSMP_TEST_SEED=<seed>` (printed);
/// `TSMP_TEST_ITERATIONS` scales the iteration counts (default 1).
@Suite struct PropertyTests {
    static let scale = Int(environmentInteger("TSMP_TEST_ITERATIONS") ?? 1)

    /// Parses `bytes` with every view and reads every field, walks and decodes every option,
    /// reads every SACK block; records an issue when a validated view breaks its invariant.
    /// Returns which views accepted the bytes.
    @discardableResult
    static func exercise(_ bytes: [UInt8], seed: UInt64) -> (ipv4: Bool, ipv6: Bool, tcp4: Bool, tcp6: Bool, icmp6: Bool) {
        var b = bytes
        return b.withUnsafeMutableBytes { buf in
            var accepted = (ipv4: false, ipv6: false, tcp4: false, tcp6: false, icmp6: false)
            if let ip = try? IPv4Packet(validating: buf) {
                accepted.ipv4 = true
                if !(20 <= ip.headerLength && ip.headerLength <= ip.totalLength && ip.totalLength <= buf.count) {
                    Issue.record("IPv4 invariant broken, seed \(seed): \(hexString(bytes))")
                }
                _ = (ip.tos, ip.identification, ip.dontFragment, ip.isFragment, ip.fragmentOffset, ip.ttl)
                _ = (ip.protocolNumber, ip.headerChecksum, ip.source, ip.destination, ip.verifyHeaderChecksum)
                _ = ip.pseudoHeaderSum(transportLength: ip.payload.count)
                if let tcp = try? TCPSegment(validating: ip.payload) { exercise(tcp, seed: seed, bytes: bytes) }
            }
            if let ip = try? IPv6Packet(validating: buf) {
                accepted.ipv6 = true
                if !(40 <= ip.transportOffset && ip.transportOffset <= ip.totalLength && ip.totalLength <= buf.count) {
                    Issue.record("IPv6 invariant broken, seed \(seed): \(hexString(bytes))")
                }
                _ = (ip.trafficClass, ip.flowLabel, ip.hopLimit, ip.nextHeader, ip.source, ip.destination)
                _ = ip.pseudoHeaderSum(transportLength: ip.payload.count)
                if let tcp = try? TCPSegment(validating: ip.payload) { exercise(tcp, seed: seed, bytes: bytes) }
            }
            if let tcp = try? TCPSegment(validating: buf) { exercise(tcp, seed: seed, bytes: bytes) }
            if let packet = try? TCPIPv4Packet(validating: buf) {
                accepted.tcp4 = true
                _ = (packet.source, packet.destination, packet.datagram.count, packet.verifyChecksums())
                _ = DecodedTCP4(packet)
            }
            accepted.tcp6 = IPv6PropertyTests.exerciseTCP6(buf, seed: seed, bytes: bytes)
            accepted.icmp6 = IPv6PropertyTests.exerciseICMP6(buf, seed: seed, bytes: bytes)
            if let packet = try? TCPIPPacket(validating: buf) {
                _ = (packet.family, packet.source, packet.destination, packet.ipHeaderLength, packet.datagram.count)
                _ = (packet.verifyChecksums(), packet.verifyHeaderChecksumOnly())
            }
            return accepted
        }
    }

    static func exercise(_ tcp: TCPSegment, seed: UInt64, bytes: [UInt8]) {
        _ = (tcp.sourcePort, tcp.destinationPort, tcp.seq, tcp.ack, tcp.flags, tcp.window, tcp.checksum)
        _ = (tcp.urgentPointer, tcp.sequenceLength, tcp.payload.count, tcp.optionBytes.count)
        let options = tcp.options
        var it = options.makeIterator()
        while let slot = it.next() {
            if !(20 <= slot.offset && slot.offset + slot.length <= tcp.headerLength && slot.length >= 1) {
                Issue.record("option slot \(slot) outside the header, seed \(seed): \(hexString(bytes))")
            }
            if let count = options.sackBlockCount(slot) {
                for i in 0..<count { _ = options.sackBlock(slot, i) }
            }
        }
        _ = (options.isMalformed, options.maximumSegmentSize, options.windowScale, options.sackPermitted)
        _ = (options.timestamp, options.hasUnspliceableOption)
    }

    @Test func randomBytesNeverTrap() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7357_0001)
        print("PropertyTests.randomBytesNeverTrap seed \(rng.seed)")
        var ipv4 = 0, tcp4 = 0, ipv6 = 0
        for _ in 0..<(5000 * Self.scale) {
            var b = rng.bytes(Int.random(in: 0...120, using: &rng))
            // Bias toward headers that pass the first checks, so the walks below them run.
            if b.count >= 40, Bool.random(using: &rng) {
                if Bool.random(using: &rng) {
                    b[0] = 0x45 + UInt8.random(in: 0...2, using: &rng)
                    let total = Int.random(in: 20...b.count, using: &rng)
                    b[2] = UInt8(total >> 8); b[3] = UInt8(total & 0xFF)
                    b[6] &= 0x40; b[7] = 0 // not a fragment
                    b[9] = 6
                    b[32] = UInt8.random(in: 5...10, using: &rng) << 4
                } else {
                    b[0] = 0x60
                    let payload = Int.random(in: 0...(b.count - 40), using: &rng)
                    b[4] = 0; b[5] = UInt8(payload)
                    b[6] = [0, 6, 6, 43, 44, 60].randomElement(using: &rng)!
                }
            }
            let r = Self.exercise(b, seed: rng.seed)
            ipv4 += r.ipv4 ? 1 : 0; tcp4 += r.tcp4 ? 1 : 0; ipv6 += r.ipv6 ? 1 : 0
        }
        // The bias works: deep paths were reached.
        print("PropertyTests.randomBytesNeverTrap accepted ipv4 \(ipv4) tcp4 \(tcp4) ipv6 \(ipv6)")
        #expect(ipv4 > 300 && tcp4 > 100 && ipv6 > 100, "ipv4 \(ipv4) tcp4 \(tcp4) ipv6 \(ipv6)")
    }

    static func mutate(_ original: [UInt8], _ rng: inout SeededGenerator) -> [UInt8] {
        var b = original
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: // truncate
                b = Array(b[0..<Int.random(in: 0...b.count, using: &rng)])
            case 1: // flip bits
                for _ in 0..<Int.random(in: 1...8, using: &rng) where !b.isEmpty {
                    b[Int.random(in: 0..<b.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                }
            case 2: // overwrite a byte
                if !b.isEmpty { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            case 3: // append junk
                b += rng.bytes(Int.random(in: 1...16, using: &rng))
            case 4: // hit a length field or an option length (IHL, total, payload length, data offset, options)
                let spots = [0, 2, 3, 4, 5, 6, 32, 33, 41, 52, 53, 61, 21, 22, 23, 25, 27, 35, 37, 45, 47]
                let at = spots.randomElement(using: &rng)!
                if at < b.count { b[at] = UInt8.random(in: 0...255, using: &rng) }
            default: // cut the datagram's length fields down consistently
                if b.count >= 6 {
                    let n = Int.random(in: 0...b.count, using: &rng)
                    let at = b[0] >> 4 == 6 ? 4 : 2
                    let value = b[0] >> 4 == 6 ? max(0, n - 40) : n
                    b[at] = UInt8(value >> 8); b[at + 1] = UInt8(value & 0xFF)
                }
            }
        }
        return b
    }

    static let seeds: [[UInt8]] = Fixture.all + [
        Fixture.linuxSYN6,
        IPv6PacketTests.ipv6([IPv6PacketTests.hopByHop, IPv6PacketTests.routing, IPv6PacketTests.destination]),
        tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: .ack, seq: 1, ack: 2, options: [
            .noOperation, .noOperation, .timestamp(value: 1, echoReply: 2), .noOperation, .noOperation,
            .sack([SackBlock(SeqNumber(1), SeqNumber(2)), SackBlock(SeqNumber(3), SeqNumber(4)), SackBlock(SeqNumber(5), SeqNumber(6))]),
        ], payload: [1, 2, 3]),
    ]

    @Test func mutatedRealPacketsNeverTrap() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7357_0002)
        print("PropertyTests.mutatedRealPacketsNeverTrap seed \(rng.seed)")
        var accepted = 0
        for _ in 0..<(6000 * Self.scale) {
            let b = Self.mutate(Self.seeds.randomElement(using: &rng)!, &rng)
            let r = Self.exercise(b, seed: rng.seed)
            accepted += (r.ipv4 || r.ipv6) ? 1 : 0
        }
        #expect(accepted > 1000, "accepted \(accepted)")
    }

    /// Random option bytes, mostly well-known kinds with random lengths, in a valid packet.
    static func randomOptions(_ rng: inout SeededGenerator) -> [UInt8] {
        var o: [UInt8] = []
        let target = Int.random(in: 0...40, using: &rng)
        while o.count < target {
            let kind: UInt8 = [0, 1, 1, 2, 3, 4, 5, 8, 19, 29, 30, 34, 253, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            o.append(kind)
            if kind > 1 {
                let natural: [UInt8: UInt8] = [2: 4, 3: 3, 4: 2, 5: 2 + 8 * UInt8.random(in: 1...4, using: &rng), 8: 10]
                let len = Int.random(in: 0..<4, using: &rng) == 0 ? UInt8.random(in: 0...44, using: &rng) : natural[kind] ?? UInt8.random(in: 2...12, using: &rng)
                o.append(len)
                if len > 2 { o += rng.bytes(Int(len) - 2) }
            }
        }
        return Array(o.prefix(40))
    }

    @Test func randomOptionListsWalkAndNeutraliseSafely() throws {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7357_0003)
        print("PropertyTests.randomOptionListsWalkAndNeutraliseSafely seed \(rng.seed)")
        var malformed = 0, sacks = 0
        for _ in 0..<(3000 * Self.scale) {
            var p = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: .ack,
                         options: [.raw(Self.randomOptions(&rng))], payload: rng.bytes(Int.random(in: 0...9, using: &rng)))
            Self.exercise(p, seed: rng.seed)
            let slots: [TCPOptionSlot] = try withTCP4(&p) { packet in
                let o = packet.tcp.options
                malformed += o.isMalformed ? 1 : 0
                var s: [TCPOptionSlot] = []
                for slot in o {
                    s.append(slot)
                    // Rewrites of well-formed fields keep the checksum wherever the option sits.
                    switch o.decode(slot) {
                    case .sack(let blocks):
                        sacks += 1
                        o.setSackBlock(slot, blocks.count - 1, SeqNumber(rng.next32()), SeqNumber(rng.next32()))
                    case .timestamp: o.setTimestamp(slot, value: rng.next32(), echoReply: rng.next32())
                    case .maximumSegmentSize: o.setMaximumSegmentSize(slot, UInt16(truncatingIfNeeded: rng.next()))
                    default: break
                    }
                }
                return s
            }
            if !referenceValid(p) { Issue.record("option rewrite broke the checksum, seed \(rng.seed): \(hexString(p))") }
            if let slot = slots.randomElement(using: &rng) {
                try withTCP4(&p) { $0.tcp.options.neutralise(slot) }
                if !referenceValid(p) { Issue.record("neutralise broke the checksum, seed \(rng.seed): \(hexString(p))") }
            }
        }
        #expect(malformed > 100 && sacks > 100, "malformed \(malformed) sacks \(sacks)")
    }

    @Test func randomRewritesKeepChecksums() throws {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7357_0004)
        print("PropertyTests.randomRewritesKeepChecksums seed \(rng.seed)")
        for _ in 0..<(2000 * Self.scale) {
            let opts: [TCPOption] = [
                .maximumSegmentSize(1460), .noOperation, .windowScale(7), .sackPermitted,
                .timestamp(value: rng.next32(), echoReply: rng.next32()),
                .sack([SackBlock(SeqNumber(rng.next32()), SeqNumber(rng.next32()))]),
            ].filter { _ in Bool.random(using: &rng) }
            var p = tcp4(src: IPv4Endpoint(IPv4Address(rng.next32()), UInt16.random(in: 0...65535, using: &rng)),
                         dst: IPv4Endpoint(IPv4Address(rng.next32()), UInt16.random(in: 0...65535, using: &rng)),
                         flags: TCPFlags(rawValue: UInt8.random(in: 0...255, using: &rng)),
                         seq: rng.next32(), ack: rng.next32(), window: UInt16.random(in: 0...65535, using: &rng),
                         options: opts, payload: rng.bytes(Int.random(in: 0...33, using: &rng)))
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                try withTCP4(&p) { packet in
                    let tcp = packet.tcp
                    switch Int.random(in: 0..<10, using: &rng) {
                    case 0: packet.setSource(IPv4Endpoint(IPv4Address(rng.next32()), UInt16.random(in: 0...65535, using: &rng)))
                    case 1: packet.setDestination(IPv4Endpoint(IPv4Address(rng.next32()), UInt16.random(in: 0...65535, using: &rng)))
                    case 2: tcp.setSeq(tcp.seq + rng.next32())
                    case 3: tcp.setAck(SeqNumber(rng.next32()))
                    case 4: tcp.setWindow(UInt16.random(in: 0...65535, using: &rng))
                    case 5: tcp.setFlags(TCPFlags(rawValue: UInt8.random(in: 0...255, using: &rng)))
                    case 6 where tcp.bytes.count > 20: tcp.setByte(Int.random(in: 20..<tcp.bytes.count, using: &rng), UInt8.random(in: 0...255, using: &rng))
                    case 7 where tcp.bytes.count >= 22:
                        tcp.set16(Int.random(in: 18...(tcp.bytes.count - 2), using: &rng), UInt16.random(in: 0...65535, using: &rng))
                    case 8 where tcp.bytes.count >= 24:
                        tcp.set32(Int.random(in: 18...(tcp.bytes.count - 4), using: &rng), rng.next32())
                    default: packet.ip.decrementTTL()
                    }
                }
                if !referenceValid(p) { Issue.record("rewrite broke a checksum, seed \(rng.seed): \(hexString(p))"); break }
            }
        }
    }
}

extension SeededGenerator {
    mutating func next32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }
}
