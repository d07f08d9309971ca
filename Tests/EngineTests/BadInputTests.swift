import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// One malformed packet and the reason the engine must count for it.
struct BadPacket: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var reason: DropReason
    var testDescription: String { "\(name) -> \(reason.rawValue)" }
}

/// Malformed input (issue 2, "Bad input"): every packet is dropped with its reason counted,
/// never traps, and an established flow keeps working afterwards.
@Suite("Bad input")
struct BadInputTests {
    /// A valid data segment of the established test flow, device -> server.
    static let good = tcp4(src: Lab.device, dst: Lab.server, flags: [.psh, .ack], seq: 1001, ack: 5001,
                           payload: pattern(12))

    /// `packet` changed by `body`, then (unless `fix` is false) both checksums recomputed, so
    /// only the intended defect remains.
    static func mutated(_ packet: [UInt8] = good, fix: Bool = true, _ body: (inout [UInt8]) -> Void) -> [UInt8] {
        var b = packet
        body(&b)
        return fix ? recomputedChecksums(b) : b
    }

    /// An IPv6 header (RFC 8200 §3) in front of `payload`.
    static func ipv6(nextHeader: UInt8, _ payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF), nextHeader, 64]
        b += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1] // 2001:db8::1
        b += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2] // 2001:db8::2
        return b + payload
    }

    static let tcpPart = Array(good[20...])

    static let cases: [BadPacket] = [
        BadPacket(name: "empty", bytes: [], reason: .truncated),
        BadPacket(name: "shorter than an IPv4 header", bytes: Array(good[0..<19]), reason: .truncated),
        BadPacket(name: "total length past the bytes", bytes: Array(good.dropLast(5)), reason: .truncated),
        BadPacket(name: "TCP header cut by total length", bytes: mutated(fix: false) { b in
            b = Array(b[0..<30]); b[2] = 0; b[3] = 30
        }, reason: .truncated),
        BadPacket(name: "TCP data offset past the segment", bytes: mutated { $0[32] = 0xF0 }, reason: .truncated),
        BadPacket(name: "version 5", bytes: mutated { $0[0] = 0x55 }, reason: .badIPVersion),
        BadPacket(name: "version 0", bytes: mutated { $0[0] = 0x05 }, reason: .badIPVersion),
        BadPacket(name: "IHL 4", bytes: mutated(fix: false) { $0[0] = 0x44 }, reason: .badIPHeaderLength),
        BadPacket(name: "IHL 0", bytes: mutated(fix: false) { $0[0] = 0x40 }, reason: .badIPHeaderLength),
        BadPacket(name: "total length below the header", bytes: mutated(fix: false) { $0[2] = 0; $0[3] = 19 }, reason: .badIPTotalLength),
        BadPacket(name: "more-fragments set", bytes: mutated { $0[6] = 0x20 }, reason: .ipFragment),
        BadPacket(name: "fragment offset 8", bytes: mutated { $0[6] = 0x00; $0[7] = 0x01 }, reason: .ipFragment),
        BadPacket(name: "UDP", bytes: mutated { $0[9] = 17 }, reason: .notTCP),
        BadPacket(name: "TCP data offset 4", bytes: mutated { $0[32] = 0x40 }, reason: .badTCPHeaderLength),
        BadPacket(name: "bad IP checksum", bytes: mutated(fix: false) { $0[10] ^= 0x01 }, reason: .badIPChecksum),
        BadPacket(name: "bad TCP checksum", bytes: mutated(fix: false) { $0[$0.count - 1] ^= 0xFF }, reason: .badTCPChecksum),
        BadPacket(name: "TTL changed without the checksum", bytes: mutated(fix: false) { $0[8] = 1 }, reason: .badIPChecksum),
        BadPacket(name: "option length 1", bytes: tcp4(src: Lab.device, dst: Lab.server, seq: 1001, ack: 5001,
                                                        options: [.raw([8, 1, 1, 1])]), reason: .badTCPOptions),
        BadPacket(name: "option past the header", bytes: tcp4(src: Lab.device, dst: Lab.server, seq: 1001, ack: 5001,
                                                              options: [.noOperation, .noOperation, .raw([2, 8, 5, 0xB4])]),
                  reason: .badTCPOptions),
        BadPacket(name: "option kind without its length byte", bytes: tcp4(src: Lab.device, dst: Lab.server, seq: 1001, ack: 5001,
                                                                           options: [.noOperation, .noOperation, .noOperation, .raw([3])]),
                  reason: .badTCPOptions),
        BadPacket(name: "IPv6 TCP", bytes: ipv6(nextHeader: 6, tcpPart), reason: .ipv6Unsupported),
        BadPacket(name: "IPv6 shorter than its header", bytes: Array(ipv6(nextHeader: 6, tcpPart)[0..<39]), reason: .truncated),
        BadPacket(name: "IPv6 payload length past the bytes", bytes: Array(ipv6(nextHeader: 6, tcpPart).dropLast()), reason: .truncated),
        BadPacket(name: "IPv6 hop-by-hop header past the end", bytes: ipv6(nextHeader: 0, [6, 4, 0, 0, 0, 0, 0, 0]),
                  reason: .badIPv6ExtensionHeader),
        BadPacket(name: "IPv6 fragment", bytes: ipv6(nextHeader: 44, [6, 0, 0, 1, 0, 0, 0, 1] + tcpPart), reason: .ipFragment),
    ]

    @Test("each malformed packet is dropped with its reason; the flow keeps working", arguments: cases)
    func droppedWithReason(_ bad: BadPacket) throws {
        let h = EngineHarness(Lab.transparent())
        let c = Conversation()
        c.handshake(h)
        let out = h.send(bad.bytes)
        #expect(out.verdict == .drop(bad.reason))
        #expect(out.generated.isEmpty)
        #expect(h.engine.counters[bad.reason] == 1)
        #expect(h.engine.counters.totalDrops == 1)
        #expect(h.engine.status().drops == [bad.reason.rawValue: 1])
        #expect(h.state() == .established)
        // The flow goes on, byte-exact both ways.
        c.deviceSends(h, [.psh, .ack], seq: 1001, ack: 5001, payload: pattern(12))
        c.serverSends(h, [.psh, .ack], seq: 5001, ack: 1013, payload: pattern(700))
        #expect(h.flow()?.packetsToServer == 3)
        #expect(h.countersAddUp)
    }

    @Test("all malformed packets in one batch: each counted, the good ones forwarded")
    func mixedBatch() throws {
        let engine = SpliceEngine(config: Lab.transparent())
        let batch = PacketBatch(capacity: 64, maxPacket: 2048)
        let generated = PacketBatch(capacity: 8, maxPacket: 2048)
        let c = Conversation()
        batch.append(c.device(.syn, seq: 1000))
        for bad in Self.cases { batch.append(bad.bytes) }
        batch.append(c.server([.syn, .ack], seq: 5000, ack: 1001))
        engine.process(batch, now: Instant(nanoseconds: 1), generated: generated)
        #expect(batch.count == Self.cases.count + 2)
        #expect(!batch.dropped[0] && !batch.dropped[batch.count - 1])
        #expect((1...Self.cases.count).allSatisfy { batch.dropped[$0] })
        #expect(batch.bytes(0) == c.towardServer(c.device(.syn, seq: 1000)))
        // In a batch, IPv4 fragments go to reassembly first (`IPv4Reassembly`). The two IPv4
        // cases are pieces of one datagram (same addresses, protocol and ID): bytes 0-31 with
        // more to come, then bytes 8-39 as the last piece, which overlaps the first: the
        // datagram is discarded (RFC 5722's rule, as Linux does for IPv4), counted once.
        let ipv4Fragments = Self.cases.filter { $0.reason == .ipFragment && $0.bytes.first.map { $0 >> 4 } == 4 }
        #expect(ipv4Fragments.count == 2)
        #expect(engine.fragmentsPending.datagrams == 0 && engine.counters.fragmentsReassembled == 0)
        #expect(engine.counters.totalDrops == UInt64(Self.cases.count - 1))
        for reason in DropReason.allCases {
            let expected = Self.cases.filter { $0.reason == reason }.count - (reason == .ipFragment ? 2 : 0)
                + (reason == .fragmentOverlap ? 1 : 0)
            #expect(engine.counters[reason] == UInt64(expected), "\(reason)")
        }
        #expect(engine.counters.packetsForwarded == 2)
        // The first piece was held until the second discarded it: counted in, not a drop.
        #expect(engine.counters.packetsIn == engine.counters.packetsForwarded + engine.counters.totalDrops + 1)
    }

    @Test("random bytes and random truncations of real packets never trap and always get a verdict")
    func fuzz() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x5EED_E061)
        let h = EngineHarness(Lab.transparent())
        let c = Conversation()
        c.handshake(h)
        let templates = [Self.good, c.server(.ack, seq: 5001, ack: 1001, options: [.sack([SackBlock(SeqNumber(1), SeqNumber(2))])]),
                         Self.ipv6(nextHeader: 6, Self.tcpPart)]
        for i in 0..<3000 {
            var p: [UInt8]
            switch i % 3 {
            case 0: p = rng.bytes(Int(rng.next() % 80))
            case 1:
                p = templates[Int(rng.next() % UInt64(templates.count))]
                p = Array(p[0..<Int(rng.next() % UInt64(p.count + 1))])
            default:
                p = templates[Int(rng.next() % UInt64(templates.count))]
                for _ in 0..<3 where !p.isEmpty { p[Int(rng.next() % UInt64(p.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            }
            h.send(p)
        }
        #expect(h.countersAddUp, "seed \(rng.seed)")
        #expect(h.engine.counters.packetsIn == 3003)
    }

    @Test("with checksum verification off, a bad TCP checksum is forwarded (offloaded input)")
    func verificationOff() throws {
        var config = Lab.transparent()
        config.verifyChecksums = false
        let h = EngineHarness(config)
        let c = Conversation()
        var syn = c.device(.syn, seq: 1000)
        syn[36] ^= 0x5A // the TCP checksum's high byte: a partial checksum, say
        let out = h.send(syn)
        #expect(out.verdict == .forward)
        #expect(h.engine.flowCount == 1)
        // Everything but the checksum is rewritten as usual, and the checksum moved by exactly
        // the rewrite's change: the packet's checksum residual is what it was on input.
        let expected = c.towardServer(c.device(.syn, seq: 1000))
        #expect(out.bytes[0..<36] == expected[0..<36])
        #expect(out.bytes[38...] == expected[38...])
        #expect(Self.tcpResidual(out.bytes) == Self.tcpResidual(syn))
        #expect(Self.tcpResidual(out.bytes) != 0xFFFF)
    }

    /// The one's-complement sum over pseudo-header and segment (0xFFFF when the checksum is right).
    static func tcpResidual(_ b: [UInt8]) -> UInt16 {
        var pseudo: UInt32 = 6 + UInt32(b.count - 20)
        for i in stride(from: 12, to: 20, by: 2) { pseudo += UInt32(b[i]) << 8 | UInt32(b[i + 1]) }
        return referenceSum(b[20...], initial: pseudo)
    }
}
