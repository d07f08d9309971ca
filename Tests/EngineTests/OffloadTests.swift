import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Packets read from a TUN with IFF_VNET_HDR carry the kernel's offload metadata (virtio-net
/// header): a partial checksum (NEEDS_CSUM) holds only the pseudo-header sum and is finished
/// by the kernel after the rewrite; a checksum the kernel already verified (DATA_VALID) is not
/// summed again; a super-segment is rewritten once.
@Suite("Offloaded packets (virtio-net header)")
struct OffloadTests {
    let engine = SpliceEngine(config: Lab.transparent())
    let generated = PacketBatch(capacity: 8, maxPacket: 2048)

    func process(_ packet: [UInt8], flags: UInt8, segmentSize: UInt16 = 0) -> (SpliceEngine.Verdict, [UInt8]) {
        var bytes = packet
        var offload = VirtioNetHeader(flags: flags, segmentationType: segmentSize > 0 ? 1 : 0,
                                      segmentSize: segmentSize, checksumStart: 20, checksumOffset: 16)
        let verdict = bytes.withUnsafeMutableBytes {
            engine.process($0, offload: &offload, now: Instant(nanoseconds: 1), generated: generated)
        }
        return (verdict, bytes)
    }

    /// The folded pseudo-header sum (RFC 9293 §3.1) a partial checksum must hold.
    static func pseudoHeaderSum(_ bytes: [UInt8]) throws -> UInt16 {
        var b = bytes
        return try b.withUnsafeMutableBytes { raw in
            let p = try TCPIPv4Packet(validating: raw)
            var s = p.ip.pseudoHeaderSum(transportLength: p.tcp.bytes.count)
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            return UInt16(s)
        }
    }

    /// A device SYN whose TCP checksum field holds the partial sum, as Linux leaves it.
    func partialSyn() throws -> [UInt8] {
        var syn = tcp4(src: Lab.device, dst: Lab.server, flags: .syn, seq: 1000, options: [.maximumSegmentSize(1460)])
        let partial = try Self.pseudoHeaderSum(syn)
        syn[36] = UInt8(partial >> 8)
        syn[37] = UInt8(partial & 0xFF)
        return syn
    }

    @Test("a partial checksum is not verified, and after the rewrite it holds the pseudo-header sum of the new addresses")
    func partialChecksum() throws {
        let (verdict, out) = process(try partialSyn(), flags: VirtioNetHeader.needsChecksum)
        #expect(verdict == .forward)
        let decoded = try DecodedTCP4(out)
        #expect(decoded.source == endpoint(Lab.firstNAT))
        #expect(decoded.ipChecksumValid)
        #expect(UInt16(out[36]) << 8 | UInt16(out[37]) == (try Self.pseudoHeaderSum(out)))
    }

    @Test("the same bytes without offload flags are a bad checksum, dropped and counted")
    func sameBytesWithoutFlags() throws {
        let (verdict, _) = process(try partialSyn(), flags: 0)
        #expect(verdict == .drop(.badTCPChecksum))
        #expect(engine.flowCount == 0)
    }

    @Test("a checksum the kernel verified (DATA_VALID) is trusted, not passed on with the rewritten packet; the IP header's is still checked")
    func dataValid() throws {
        var syn = tcp4(src: Lab.device, dst: Lab.server, flags: .syn, seq: 1000)
        syn[36] ^= 0x5A
        var bytes = syn
        var offload = VirtioNetHeader(flags: VirtioNetHeader.dataValid)
        let verdict = bytes.withUnsafeMutableBytes {
            engine.process($0, offload: &offload, now: Instant(nanoseconds: 1), generated: generated)
        }
        #expect(verdict == .forward)
        #expect(offload.flags & VirtioNetHeader.dataValid == 0, "the receiver checks the rewritten checksum itself")
        var badIP = tcp4(src: "10.1.0.3:40000", dst: Lab.server, flags: .syn, seq: 1000)
        badIP[10] ^= 0x5A
        #expect(process(badIP, flags: VirtioNetHeader.dataValid).0 == .drop(.badIPChecksum))
    }

    @Test("a super-segment is rewritten once, whatever its size, and its segment size is kept")
    func superSegment() throws {
        let syn = try partialSyn()
        _ = process(syn, flags: VirtioNetHeader.needsChecksum)
        _ = process(tcp4(src: Lab.server, dst: Lab.firstNAT, flags: [.syn, .ack], seq: 5000, ack: 1001), flags: 0)
        let payload = [UInt8](repeating: 0x42, count: 60_000)
        var big = tcp4(src: Lab.server, dst: Lab.firstNAT, flags: .ack, seq: 5001, ack: 1001, payload: payload)
        let partial = try Self.pseudoHeaderSum(big)
        big[36] = UInt8(partial >> 8)
        big[37] = UInt8(partial & 0xFF)
        var offload = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, segmentationType: 1, headerLength: 40,
                                      segmentSize: 1448, checksumStart: 20, checksumOffset: 16)
        let verdict = big.withUnsafeMutableBytes {
            engine.process($0, offload: &offload, now: Instant(nanoseconds: 2), generated: generated)
        }
        #expect(verdict == .forward)
        #expect(offload.segmentSize == 1448)
        let decoded = try DecodedTCP4(big)
        #expect(decoded.destination == endpoint(Lab.device) && decoded.payload.count == 60_000)
        #expect(UInt16(big[36]) << 8 | UInt16(big[37]) == (try Self.pseudoHeaderSum(big)))
        #expect(engine.counters.superSegmentsIn == 1)
    }
}
