import Testing
import TestSupport
import Wire

/// TCP header view (RFC 9293 §3.1) and its checksum-keeping setters (RFC 1624).
@Suite struct TCPSegmentTests {
    @Test func deconstructsLinuxSYN() throws {
        var p = Fixture.linuxSYN
        try withTCP4(&p) { packet in
            let tcp = packet.tcp
            #expect(tcp.sourcePort == 40000)
            #expect(tcp.destinationPort == 80)
            #expect(tcp.seq == SeqNumber(0x30a7_391f))
            #expect(tcp.ack == SeqNumber(0))
            #expect(tcp.headerLength == 40)
            #expect(tcp.flags == .syn)
            #expect(tcp.window == 64240)
            #expect(tcp.checksum == 0xc418)
            #expect(tcp.urgentPointer == 0)
            #expect(tcp.payloadLength == 0)
            #expect(tcp.payload.isEmpty)
            #expect(tcp.optionBytes.count == 20)
            #expect(tcp.sequenceLength == 1)
            #expect(packet.source == IPv4Endpoint(IPv4Address(10, 1, 0, 2), 40000))
            #expect(packet.destination == IPv4Endpoint(IPv4Address(10, 2, 0, 2), 80))
            #expect(packet.datagram.count == 60)
            #expect(packet.verifyChecksums() == nil)
        }
    }

    @Test func deconstructsLinuxData() throws {
        var p = Fixture.linuxData
        try withTCP4(&p) { packet in
            let tcp = packet.tcp
            #expect(tcp.seq == SeqNumber(0x30a7_3920))
            #expect(tcp.ack == SeqNumber(0x1122_3345))
            #expect(tcp.flags == [.psh, .ack])
            #expect(tcp.window == 63)
            #expect(tcp.headerLength == 32)
            #expect(tcp.payloadLength == 5)
            #expect(Array(tcp.payload) == Array("hello".utf8))
            #expect(tcp.sequenceLength == 5)
            #expect(packet.verifyChecksums() == nil)
        }
    }

    static let sequenceLengths: [(TCPFlags, UInt32)] = [
        (.syn, 1), ([.syn, .fin], 2), (.fin, 1), ([.ack, .rst], 0), ([], 0),
    ]
    @Test(arguments: sequenceLengths)
    func sequenceLengthCountsSYNAndFIN(flags: TCPFlags, extra: UInt32) throws {
        var p = tcp4(src: "10.1.0.2:1", dst: "10.2.0.2:2", flags: flags, payload: [1, 2, 3])
        let n = try withTCP4(&p) { $0.tcp.sequenceLength }
        #expect(n == 3 + extra)
    }

    @Test func flagsDescription() {
        #expect(TCPFlags([.syn, .ack]).description == "S.")
        #expect(TCPFlags([.fin, .psh, .ack]).description == "FP.")
        #expect(TCPFlags([]).description == "none")
        #expect(TCPFlags(rawValue: 0xFF).description == "SFRP.UEW")
    }

    @Test func everySegmentTruncationThrowsTruncated() {
        let segment = Array(Fixture.linuxSYN[20...])
        for n in 0..<segment.count {
            #expect(tcpSegmentError(Array(segment[0..<n])) == .truncated, "length \(n)")
        }
        #expect(tcpSegmentError(segment) == nil)
    }

    @Test func everyDatagramLengthCuttingTCPThrowsTruncated() {
        // The IP header is whole and consistent; its total length cuts the TCP header.
        for total in 20..<60 {
            #expect(tcp4Error(withTotalLength(Fixture.linuxSYN, total)) == .truncated, "total \(total)")
        }
        // A total length past the header's options but before the end: the payload shrinks.
        #expect(tcp4Error(withTotalLength(Fixture.linuxData, 53)) == nil)
    }

    @Test(arguments: [0, 1, 2, 3, 4] as [UInt8])
    func refusesDataOffsetBelowFiveWords(offset: UInt8) {
        var segment = Array(Fixture.linuxSYN[20...])
        segment[12] = offset << 4
        #expect(tcpSegmentError(segment) == .badTCPHeaderLength)
    }

    @Test func refusesDataOffsetBeyondSegment() {
        var segment = Array(Fixture.linuxSYN[20...])
        segment[12] = 0xF0 // 60 bytes of header in 40
        #expect(tcpSegmentError(segment) == .truncated)
    }

    @Test func detectsBadTCPChecksum() throws {
        var p = Fixture.linuxData
        p[56] ^= 0x01 // last payload byte
        #expect(try withTCP4(&p) { $0.verifyChecksums() } == .badTCPChecksum)
    }

    @Test func fillChecksumMatchesCapture() throws {
        var p = Fixture.linuxData
        p[36] = 0; p[37] = 0
        try withTCP4(&p) { $0.tcp.fillChecksum(pseudoHeaderSum: $0.ip.pseudoHeaderSum(transportLength: $0.tcp.bytes.count)) }
        #expect(p == Fixture.linuxData)
    }

    // MARK: Setters: each keeps the checksum, checked by a full reference recompute.

    static let setters: [SetterCase] = [
        SetterCase("source port") { $0.tcp.setSourcePort(0xFFFF) },
        SetterCase("destination port") { $0.tcp.setDestinationPort(0) },
        SetterCase("seq") { $0.tcp.setSeq(SeqNumber(0xFFFF_FFFF)) },
        SetterCase("ack") { $0.tcp.setAck(SeqNumber(0x8000_0001)) },
        SetterCase("window") { $0.tcp.setWindow(1) },
        SetterCase("flags") { $0.tcp.setFlags([.fin, .ack, .ece, .cwr]) },
        SetterCase("set16 odd") { $0.tcp.set16(29, 0xBEEF) },
        SetterCase("set32 odd") { $0.tcp.set32(21, 0xDEAD_BEEF) },
        SetterCase("set32 even") { $0.tcp.set32(24, 0x0102_0304) },
        SetterCase("NAT source") { $0.setSource(IPv4Endpoint(IPv4Address(100, 64, 0, 1), 61000)) },
        SetterCase("NAT destination") { $0.setDestination(IPv4Endpoint(IPv4Address(10, 9, 8, 7), 8080)) },
        SetterCase("NAT address only") { $0.setSource(IPv4Endpoint(IPv4Address(1, 2, 3, 4), 40000)) },
        SetterCase("address pseudo-header fold") { p in
            // Change the IP source behind TCP's back, then fold the change into TCP alone.
            let old = p.ip.source
            p.ip.setSource(IPv4Address(172, 16, 1, 1))
            p.tcp.adjustChecksumForAddress(old: old, new: IPv4Address(172, 16, 1, 1))
        },
    ]

    @Test(arguments: setters)
    func setterKeepsChecksum(setter: SetterCase) throws {
        for fixture in Fixture.all {
            var p = fixture
            try withTCP4(&p) { setter.apply($0) }
            #expect(p != fixture)
            #expect(referenceValid(p), "\(setter.name) on \(hexString(fixture))")
        }
    }

    @Test func settersWriteTheirFields() throws {
        var p = Fixture.linuxData
        try withTCP4(&p) { packet in
            packet.tcp.setSourcePort(1)
            packet.tcp.setDestinationPort(2)
            packet.tcp.setSeq(SeqNumber(3))
            packet.tcp.setAck(SeqNumber(4))
            packet.tcp.setWindow(5)
            packet.tcp.setFlags(.rst)
            packet.setSource(IPv4Endpoint(IPv4Address(1, 1, 1, 1), 6))
            packet.setDestination(IPv4Endpoint(IPv4Address(2, 2, 2, 2), 7))
        }
        let d = try DecodedTCP4(p)
        #expect(d.source == IPEndpoint(IPv4Address(1, 1, 1, 1), 6))
        #expect(d.destination == IPEndpoint(IPv4Address(2, 2, 2, 2), 7))
        #expect(d.seq == SeqNumber(3))
        #expect(d.ack == SeqNumber(4))
        #expect(d.window == 5)
        #expect(d.flags == .rst)
        #expect(d.payload == Array("hello".utf8))
        #expect(d.timestamp?.value == 0x4393_2b03) // data offset kept by setFlags
        #expect(d.checksumsValid)
        #expect(referenceValid(p))
    }

    /// setByte at every offset from the first option byte to the last payload byte (odd
    /// offsets, and the last byte of an odd-length segment whose word is zero-padded).
    @Test func setByteAtEveryOffsetKeepsChecksum() throws {
        var p = Fixture.linuxData
        for offset in 20..<(p.count - 20) {
            try withTCP4(&p) { $0.tcp.setByte(offset, UInt8(truncatingIfNeeded: offset &* 37)) }
            #expect(p[20 + offset] == UInt8(truncatingIfNeeded: offset &* 37))
            #expect(referenceValid(p), "offset \(offset)")
        }
    }

    @Test func set16AndSet32AtEveryAlignmentKeepChecksum() throws {
        var p = tcp4(src: "10.1.0.2:1", dst: "10.2.0.2:2", payload: Array(0..<23))
        let segmentLength = p.count - 20
        for offset in 20...(segmentLength - 4) {
            try withTCP4(&p) { $0.tcp.set32(offset, 0xA5A5_0000 | UInt32(offset)) }
            #expect(referenceValid(p), "set32 at \(offset)")
            try withTCP4(&p) { $0.tcp.set16(offset + 1, UInt16(offset) << 8 | 0x5A) }
            #expect(referenceValid(p), "set16 at \(offset + 1)")
        }
    }
}

/// A named setter applied to a packet, as a test argument.
struct SetterCase: Sendable, CustomTestStringConvertible {
    let name: String
    let apply: @Sendable (TCPIPv4Packet) -> Void
    init(_ name: String, _ apply: @escaping @Sendable (TCPIPv4Packet) -> Void) { self.name = name; self.apply = apply }
    var testDescription: String { name }
}
