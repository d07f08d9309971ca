import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// GRO-style coalescing before a TUN write: what merges, what must not, and that the kernel's
/// segmentation of a merged super-segment gives back the original segments byte for byte.
@Suite("Segment coalescing (GRO before the TUN write)")
struct SegmentCoalescerTests {
    static let a = "10.2.0.1:40000", b = "10.2.0.2:5201", c = "10.1.0.3:41000"
    static let ts: [TCPOption] = [.noOperation, .noOperation, .timestamp(value: 7, echoReply: 9)]

    static func segment(_ k: Int, size: Int = 1448, src: String = a, dst: String = b, flags: TCPFlags = .ack,
                        seq0: UInt32 = 1000, ack: UInt32 = 5000, window: UInt16 = 500,
                        options: [TCPOption] = ts, id0: UInt16 = 100) -> [UInt8] {
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ k &* 31) }
        return tcp4(src: src, dst: dst, flags: flags, seq: seq0 &+ UInt32(k * 1448), ack: ack, window: window,
                    options: options, payload: payload, id: id0 &+ UInt16(k))
    }

    static func batch(_ packets: [[UInt8]]) -> PacketBatch {
        let batch = PacketBatch(capacity: max(packets.count, 1))
        for p in packets { batch.append(p) }
        return batch
    }

    /// Packets still to be written.
    static func written(_ batch: PacketBatch) -> [(bytes: [UInt8], offload: VirtioNetHeader)] {
        (0..<batch.count).filter { !batch.dropped[$0] }.map { (batch.bytes($0), batch.offloads[$0]) }
    }

    /// What the kernel does with a GSO TCPv4 super-segment (tcp_gso_segment): cut the payload
    /// at `segmentSize`, increment the IP id, keep PSH/FIN for the last piece, fill checksums.
    static func segmentLikeTheKernel(_ bytes: [UInt8], _ offload: VirtioNetHeader) throws -> [[UInt8]] {
        var super_ = bytes
        return try super_.withUnsafeMutableBytes { raw in
            let p = try TCPIPv4Packet(validating: raw)
            let headers = Int(offload.headerLength)
            let header = Array(raw[0..<headers])
            let payload = Array(raw[headers...])
            let size = Int(offload.segmentSize)
            var out: [[UInt8]] = []
            var offset = 0
            while offset < payload.count {
                let n = min(size, payload.count - offset)
                var piece = header + payload[offset..<(offset + n)]
                piece[2] = UInt8(piece.count >> 8)
                piece[3] = UInt8(truncatingIfNeeded: piece.count)
                let last = offset + n == payload.count
                try piece.withUnsafeMutableBytes { q in
                    let ip = try IPv4Packet(validating: q)
                    ip.setIdentification(p.ip.identification &+ UInt16(out.count))
                    ip.fillHeaderChecksum()
                    let s = try TCPIPv4Packet(validating: q)
                    s.tcp.setSeq(p.tcp.seq + UInt32(offset))
                    if !last { s.tcp.setFlags(s.tcp.flags.subtracting([.psh, .fin])) }
                    s.tcp.fillChecksum(pseudoHeaderSum: s.ip.pseudoHeaderSum(transportLength: s.tcp.bytes.count))
                }
                out.append(piece)
                offset += n
            }
            return out
        }
    }

    @Test("consecutive in-order segments of one flow become one super-segment the kernel cuts back byte for byte")
    func mergesAndSplitsBack() throws {
        let originals = (0..<5).map { Self.segment($0) }
        let batch = Self.batch(originals)
        #expect(SegmentCoalescer.coalesce(batch) == 4)
        let out = Self.written(batch)
        try #require(out.count == 1)
        let (bytes, offload) = out[0]
        #expect(offload.flags == VirtioNetHeader.needsChecksum)
        #expect(offload.segmentationType == VirtioNetHeader.SegmentationType.tcpV4.rawValue)
        #expect(offload.segmentSize == 1448 && offload.headerLength == 52)
        #expect(offload.checksumStart == 20 && offload.checksumOffset == 16)
        #expect(bytes.count == 52 + 5 * 1448)
        // The partial checksum holds the pseudo-header sum for the new length.
        #expect(try OffloadTests.pseudoHeaderSum(bytes) == UInt16(bytes[36]) << 8 | UInt16(bytes[37]))
        #expect(try Self.segmentLikeTheKernel(bytes, offload) == originals)
    }

    @Test("the last segment may be shorter; it ends the super-segment")
    func shorterLastSegment() throws {
        let originals = [Self.segment(0), Self.segment(1), Self.segment(2, size: 300), Self.segment(3)]
        let batch = Self.batch(originals)
        #expect(SegmentCoalescer.coalesce(batch) == 2)
        let out = Self.written(batch)
        try #require(out.count == 2)
        #expect(try Self.segmentLikeTheKernel(out[0].bytes, out[0].offload) == Array(originals[0...2]))
        #expect(out[1].bytes == originals[3]) // starts past the short one: not merged, left alone
    }

    @Test("PSH may close a super-segment, nothing joins after it")
    func pushEnds() throws {
        let originals = [Self.segment(0), Self.segment(1, flags: [.ack, .psh]), Self.segment(2)]
        let batch = Self.batch(originals)
        #expect(SegmentCoalescer.coalesce(batch) == 1)
        let out = Self.written(batch)
        try #require(out.count == 2)
        #expect(try Self.segmentLikeTheKernel(out[0].bytes, out[0].offload) == Array(originals[0...1]))
        #expect(out[1].bytes == originals[2])
    }

    @Test("segments of other flows in between don't stop a merge; flows are never mixed")
    func interleavedFlows() throws {
        let x = (0..<3).map { Self.segment($0) }
        let y = (0..<3).map { Self.segment($0, src: Self.c, seq0: 77_000) }
        let batch = Self.batch([x[0], y[0], x[1], y[1], x[2], y[2]])
        #expect(SegmentCoalescer.coalesce(batch) == 4)
        let out = Self.written(batch)
        try #require(out.count == 2)
        #expect(try Self.segmentLikeTheKernel(out[0].bytes, out[0].offload) == x)
        #expect(try Self.segmentLikeTheKernel(out[1].bytes, out[1].offload) == y)
    }

    @Test("what must not merge", arguments: [
        "gap", "retransmission", "SYN", "RST", "FIN", "URG", "CWR", "other ack", "other window",
        "other timestamp", "other option length", "ECN CE", "longer than the first", "pure ACK",
    ])
    func mustNotMerge(_ what: String) throws {
        let first = Self.segment(0)
        let second: [UInt8]
        switch what {
        case "gap": second = Self.segment(2)
        case "retransmission": second = Self.segment(0)
        case "SYN": second = Self.segment(1, flags: [.syn, .ack])
        case "RST": second = Self.segment(1, flags: [.rst, .ack])
        case "FIN": second = Self.segment(1, flags: [.fin, .ack])
        case "URG": second = Self.segment(1, flags: [.urg, .ack])
        case "CWR": second = Self.segment(1, flags: [.cwr, .ack])
        case "other ack": second = Self.segment(1, ack: 5001)
        case "other window": second = Self.segment(1, window: 501)
        case "other timestamp":
            second = Self.segment(1, options: [.noOperation, .noOperation, .timestamp(value: 8, echoReply: 9)])
        case "other option length": second = Self.segment(1, options: [])
        case "ECN CE":
            var p = Self.segment(1)
            p[1] |= 0x03
            try withTCP4(&p) { $0.ip.fillHeaderChecksum() }
            second = p
        case "longer than the first":
            let short = Self.segment(0, size: 1000)
            let batch = Self.batch([short, tcp4(src: Self.a, dst: Self.b, seq: 2000, ack: 5000, window: 500,
                                                options: Self.ts, payload: [UInt8](repeating: 1, count: 1448), id: 101)])
            #expect(SegmentCoalescer.coalesce(batch) == 0)
            return
        case "pure ACK": second = Self.segment(1, size: 0)
        default: Issue.record("unknown case \(what)"); return
        }
        let batch = Self.batch([first, second])
        #expect(SegmentCoalescer.coalesce(batch) == 0)
        #expect(Self.written(batch).map(\.bytes) == [first, second])
        #expect(Self.written(batch).allSatisfy { $0.offload == VirtioNetHeader() })
    }

    @Test("a same-flow packet that can't join ends the super-segment (no reordering across it)")
    func sameFlowPacketBetweenEnds() throws {
        let ackOnly = Self.segment(1, size: 0) // a pure ACK of the same direction
        let batch = Self.batch([Self.segment(0), ackOnly, Self.segment(1)])
        #expect(SegmentCoalescer.coalesce(batch) == 0)
        #expect(Self.written(batch).count == 3)
    }

    @Test("never more than 65,535 bytes")
    func sizeLimit() throws {
        let originals = (0..<50).map { Self.segment($0) }
        let batch = Self.batch(originals)
        SegmentCoalescer.coalesce(batch)
        let out = Self.written(batch)
        #expect(out.allSatisfy { $0.bytes.count <= 65_535 })
        #expect(out.count == 2) // 45 segments fit (52 + 45 * 1448 = 65,212), then the rest
        var back: [[UInt8]] = []
        for o in out { back += try Self.segmentLikeTheKernel(o.bytes, o.offload) }
        #expect(back == originals)
    }

    @Test("super-segments and packets already dropped are left alone")
    func leavesSuperSegmentsAndDropped() throws {
        let batch = Self.batch([Self.segment(0), Self.segment(1), Self.segment(2)])
        batch.offloads[0].segmentSize = 1448
        batch.markDropped(2)
        #expect(SegmentCoalescer.coalesce(batch) == 0)
        #expect(Self.written(batch).count == 2)
    }

    @Test("packets made in user space (outbound) are written as made: GRO merges what was read")
    func leavesOutboundPackets() throws {
        let batch = PacketBatch(capacity: 4)
        for k in 0..<4 { batch.append(Self.segment(k), direction: .outbound) }
        #expect(SegmentCoalescer.coalesce(batch) == 0)
        #expect(Self.written(batch).count == 4)
        // The same segments read from a device merge.
        #expect(SegmentCoalescer.coalesce(Self.batch((0..<4).map { Self.segment($0) })) == 3)
    }

    @Test("a partial checksum in, a partial checksum out: the kernel's finished sum verifies")
    func partialChecksumsIn() throws {
        var originals = (0..<3).map { Self.segment($0) }
        let batch = Self.batch(originals)
        for i in 0..<3 {
            let p = try TCPIPv4Packet(validating: batch.packet(i))
            p.refreshPartialChecksum()
            batch.offloads[i] = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 20, checksumOffset: 16)
        }
        #expect(SegmentCoalescer.coalesce(batch) == 2)
        let out = Self.written(batch)
        try #require(out.count == 1)
        // Finish the checksum as the kernel would (complement of the sum from checksumStart).
        var finished = out[0].bytes
        try finished.withUnsafeMutableBytes { raw in
            let p = try TCPIPv4Packet(validating: raw)
            let sum = InternetChecksum.sum(UnsafeRawBufferPointer(p.tcp.bytes))
            raw[36] = UInt8(~sum >> 8)
            raw[37] = UInt8(truncatingIfNeeded: ~sum)
            #expect(p.verifyChecksums() == nil)
        }
        originals = try Self.segmentLikeTheKernel(out[0].bytes, out[0].offload)
        #expect(originals == (0..<3).map { Self.segment($0) })
    }
}
