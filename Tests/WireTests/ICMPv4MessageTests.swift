import Testing
import TestSupport
import Wire

/// ICMPv4 errors about TCP (RFC 792, RFC 1191): every field read from real bytes, the builder's
/// bytes, rewrites that keep all three checksums right, and malformed or truncated input
/// refused with a reason, never a trap.
@Suite struct ICMPv4MessageTests {
    /// A router 10.9.0.1 tells 10.2.0.1 its 1500-byte segment to 10.2.0.2:5201 needs an MTU of
    /// 1400: outer IPv4 header, ICMP 3/4 with MTU 1400, the quoted IPv4 header and 8 TCP bytes.
    static let fragNeededFixture: [UInt8] = [
        0x45, 0xC0, 0x00, 0x38, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0x00, 0x00, // outer IPv4 (checksum filled below)
        10, 9, 0, 1, 10, 2, 0, 1,
        0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x05, 0x78,                         // type 3 code 4, MTU 1400
        0x45, 0x00, 0x05, 0xDC, 0x12, 0x34, 0x40, 0x00, 0x3F, 0x06, 0x00, 0x00, // quoted IPv4, total 1500, DF
        10, 2, 0, 1, 10, 2, 0, 2,
        0xEE, 0x48, 0x14, 0x51, 0x00, 0x01, 0xE2, 0x40,                         // 61000 -> 5201, seq 123456
    ]

    static func fixture() -> [UInt8] {
        var b = fragNeededFixture
        b.withUnsafeMutableBytes { buf in
            (try? IPv4Packet(validating: buf))?.fillHeaderChecksum()
            (try? ICMPv4Message(validating: buf))?.fillChecksum()
        }
        return b
    }

    @Test func readsEveryFieldOfAFragmentationNeeded() throws {
        var b = Self.fixture()
        try b.withUnsafeMutableBytes { buf in
            let m = try ICMPv4Message(validating: buf)
            #expect(m.ip.source == address("10.9.0.1") && m.ip.destination == address("10.2.0.1"))
            #expect(m.type == 3 && m.code == 4)
            #expect(m.kind == .fragmentationNeeded)
            #expect(m.nextHopMTU == 1400)
            #expect(m.verifyChecksum)
            let q = try m.quotedTCP()
            #expect(IPEndpoint(q.source) == endpoint("10.2.0.1:61000") && IPEndpoint(q.destination) == endpoint("10.2.0.2:5201"))
            #expect(q.seq == SeqNumber(123_456))
            #expect(q.originalTotalLength == 1500)
            #expect(q.ack == nil && !q.hasChecksum && q.flags == nil)
        }
    }

    @Test func theBuilderWritesTheSameBytes() {
        let original = tcp4(src: "10.2.0.1:61000", dst: "10.2.0.2:5201", flags: .ack, seq: 123_456, payload: [UInt8](repeating: 7, count: 1460),
                            ttl: 63, id: 0x1234)
        let built = ICMPv4Builder.bytes(.fragmentationNeeded(from: address("10.9.0.1"), to: address("10.2.0.1"), mtu: 1400),
                                        quoting: original, quoteLength: 28)
        // The fixture's quoted IP checksum is 0; the builder quotes the real one.
        var expected = Self.fragNeededFixture
        expected.replaceSubrange(28..<56, with: original[0..<28])
        expected.withUnsafeMutableBytes { buf in
            (try? IPv4Packet(validating: buf))?.fillHeaderChecksum()
            (try? ICMPv4Message(validating: buf))?.fillChecksum()
        }
        #expect(built == expected)
    }

    @Test func classifiesTheErrorsTheProxyTranslates() {
        #expect(ICMPv4ErrorKind(type: 3, code: 3) == .protocolOrPortUnreachable(code: 3))
        #expect(ICMPv4ErrorKind(type: 3, code: 1) == .destinationUnreachable(code: 1))
        #expect(ICMPv4ErrorKind(type: 11, code: 0) == .timeExceeded(code: 0))
        #expect(ICMPv4ErrorKind(type: 12, code: 0) == .parameterProblem(code: 0))
        #expect(ICMPv4ErrorKind(type: 8, code: 0) == nil) // echo request: a query
        #expect(ICMPv4ErrorKind(type: 0, code: 0) == nil)
    }

    @Test func rewritingTheQuoteKeepsEveryChecksumRight() throws {
        // A full quote (RFC 1812 lets routers quote up to 576 bytes): the quoted TCP checksum is there too.
        let original = tcp4(src: "10.2.0.1:61000", dst: "10.2.0.2:5201", flags: [.ack, .psh], seq: 1000, ack: 2000, payload: [1, 2, 3, 4])
        var icmp = ICMPv4Builder.bytes(.portUnreachable(from: address("10.2.0.2"), to: address("10.2.0.1")), quoting: original)
        try icmp.withUnsafeMutableBytes { buf in
            let m = try ICMPv4Message(validating: buf)
            let q = try m.quotedTCP()
            #expect(q.hasAck && q.hasChecksum && q.ack == SeqNumber(2000) && q.flags == [.ack, .psh])
            q.setSource(endpoint("10.1.0.2:40000").ipv4!)
            q.setDestination(endpoint("10.2.0.2:5201").ipv4!)
            q.setSeq(SeqNumber(77))
            q.setAck(SeqNumber(88))
            m.ip.setDestination(address("10.1.0.2"))
            m.fillChecksum()
            #expect(m.ip.verifyHeaderChecksum)
            #expect(m.verifyChecksum)
        }
        // The quote is now exactly the packet the device would have sent.
        let asDevice = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:5201", flags: [.ack, .psh], seq: 77, ack: 88, payload: [1, 2, 3, 4])
        #expect(Array(icmp[28...]) == asDevice)
    }

    @Test func everyTruncationIsAnErrorNeverATrap() {
        let full = Self.fixture()
        for n in 0..<full.count {
            var b = Array(full[0..<n])
            b.withUnsafeMutableBytes { buf in
                if n >= 4 { buf.setBigEndianU16(2, UInt16(n)) } // total length says what is there
                do {
                    let m = try ICMPv4Message(validating: buf)
                    #expect(n >= 28)
                    #expect(throws: ICMPWireError.quotedTruncated) { try m.quotedTCP() }
                } catch {
                    #expect(n < 28)
                }
            }
        }
    }

    @Test func malformedQuotesAreRefusedWithTheirReason() throws {
        func quoteError(_ edit: (inout [UInt8]) -> Void) -> ICMPWireError? {
            var b = Self.fixture()
            edit(&b)
            return b.withUnsafeMutableBytes { buf -> ICMPWireError? in
                do {
                    _ = try ICMPv4Message(validating: buf).quotedTCP()
                    return nil
                } catch { return error as? ICMPWireError }
            }
        }
        #expect(quoteError { $0[28] = 0x65 } == .quotedMalformed)  // version 6 in an IPv4 quote
        #expect(quoteError { $0[28] = 0x44 } == .quotedMalformed)  // header length 16
        #expect(quoteError { $0[28] = 0x46 } == .quotedTruncated)  // options claimed, not quoted
        #expect(quoteError { $0[37] = 17 } == .quotedNotTCP)       // UDP
        #expect(quoteError { $0[35] = 0xB9 } == .quotedNotTCP)     // a later fragment
        #expect(quoteError { _ in } == nil)
        var notICMP = Self.fixture()
        notICMP[9] = 6
        notICMP.withUnsafeMutableBytes { buf in
            #expect(throws: ICMPWireError.notICMP) { try ICMPv4Message(validating: buf) }
        }
        var fragment = Self.fixture()
        fragment[6] = 0x20 // more fragments
        fragment.withUnsafeMutableBytes { buf in
            #expect(throws: ICMPWireError.fragment) { try ICMPv4Message(validating: buf) }
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SeededGenerator(seed: 13)
        for _ in 0..<2000 {
            var b = Self.fixture()
            for _ in 0..<4 { b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            b = Array(b[0..<Int.random(in: 0...b.count, using: &rng)])
            b.withUnsafeMutableBytes { buf in
                guard let m = try? ICMPv4Message(validating: buf) else { return }
                _ = (m.kind, m.nextHopMTU, m.verifyChecksum)
                if let q = try? m.quotedTCP() { _ = (q.source, q.destination, q.seq, q.ack, q.flags) }
            }
        }
    }
}

extension UnsafeMutableRawBufferPointer {
    fileprivate func setBigEndianU16(_ at: Int, _ v: UInt16) {
        self[at] = UInt8(v >> 8)
        self[at + 1] = UInt8(truncatingIfNeeded: v)
    }
}
