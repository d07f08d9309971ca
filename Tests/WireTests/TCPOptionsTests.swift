import Testing
import TestSupport
import Wire

/// TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018; detection of RFC 8684, RFC 2385, RFC 5925).
@Suite struct TCPOptionsTests {
    /// The slots of a packet's options, and whether the walk found the list malformed.
    static func walk(_ bytes: [UInt8]) throws -> (slots: [TCPOptionSlot], decoded: [TCPOption], malformed: Bool) {
        var p = bytes
        return try withTCP4(&p) { packet in
            let options = packet.tcp.options
            var it = options.makeIterator()
            var slots: [TCPOptionSlot] = []
            while let s = it.next() { slots.append(s) }
            #expect(options.isMalformed == it.isMalformed)
            return (slots, slots.map(options.decode), it.isMalformed)
        }
    }

    static func packet(options: [TCPOption], flags: TCPFlags = .syn) -> [UInt8] {
        tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: flags, seq: 1000, options: options)
    }

    @Test func walksLinuxSYNOptions() throws {
        let (slots, decoded, malformed) = try Self.walk(Fixture.linuxSYN)
        #expect(slots.map(\.kind) == [2, 4, 8, 1, 3])
        #expect(slots.map(\.offset) == [20, 24, 26, 36, 37])
        #expect(slots.map(\.length) == [4, 2, 10, 1, 3])
        #expect(decoded == [.maximumSegmentSize(1460), .sackPermitted,
                            .timestamp(value: 0x4393_2b03, echoReply: 0), .noOperation, .windowScale(10)])
        #expect(!malformed)
        var p = Fixture.linuxSYN
        try withTCP4(&p) { packet in
            let o = packet.tcp.options
            #expect(o.maximumSegmentSize == 1460)
            #expect(o.windowScale == 10)
            #expect(o.sackPermitted)
            #expect(o.timestamp?.value == 0x4393_2b03)
            #expect(o.timestamp?.echoReply == 0)
            #expect(!o.hasUnspliceableOption)
            #expect(o.first(kind: TCPOptionKind.windowScale)?.0 == slots[4])
            #expect(o.first(kind: TCPOptionKind.sack) == nil)
        }
    }

    @Test func noOptionsWalkEmpty() throws {
        let (slots, _, malformed) = try Self.walk(Self.packet(options: []))
        #expect(slots.isEmpty)
        #expect(!malformed)
        var p = Self.packet(options: [])
        try withTCP4(&p) { packet in
            #expect(packet.tcp.options.maximumSegmentSize == nil)
            #expect(packet.tcp.options.windowScale == nil)
            #expect(!packet.tcp.options.sackPermitted)
            #expect(packet.tcp.options.timestamp == nil)
        }
    }

    static let kinds: [OptionCase] = [
        OptionCase("MSS", [2, 4, 0x05, 0xB4], .maximumSegmentSize(1460)),
        OptionCase("MSS length 3", [2, 3, 5], .raw([2, 3, 5])),
        OptionCase("MSS length 6", [2, 6, 0, 0, 0, 0], .raw([2, 6, 0, 0, 0, 0])),
        OptionCase("window scale", [3, 3, 14], .windowScale(14)),
        OptionCase("window scale length 4", [3, 4, 14, 0], .raw([3, 4, 14, 0])),
        OptionCase("SACK-permitted", [4, 2], .sackPermitted),
        OptionCase("SACK-permitted length 3", [4, 3, 0], .raw([4, 3, 0])),
        OptionCase("SACK 1 block", [5, 10] + [UInt8](repeating: 7, count: 8), .sack(Array(repeating: SackBlock(SeqNumber(0x0707_0707), SeqNumber(0x0707_0707)), count: 1))),
        OptionCase("SACK 2 blocks", [5, 18] + [UInt8](repeating: 7, count: 16), .sack(Array(repeating: SackBlock(SeqNumber(0x0707_0707), SeqNumber(0x0707_0707)), count: 2))),
        OptionCase("SACK 3 blocks", [5, 26] + [UInt8](repeating: 7, count: 24), .sack(Array(repeating: SackBlock(SeqNumber(0x0707_0707), SeqNumber(0x0707_0707)), count: 3))),
        OptionCase("SACK 4 blocks", [5, 34] + [UInt8](repeating: 7, count: 32), .sack(Array(repeating: SackBlock(SeqNumber(0x0707_0707), SeqNumber(0x0707_0707)), count: 4))),
        OptionCase("SACK length 2", [5, 2], .raw([5, 2])),
        OptionCase("SACK length 6", [5, 6, 0, 0, 0, 0], .raw([5, 6, 0, 0, 0, 0])),
        OptionCase("SACK length 11", [5, 11] + [UInt8](repeating: 0, count: 9), .raw([5, 11] + [UInt8](repeating: 0, count: 9))),
        OptionCase("timestamps", [8, 10, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE], .timestamp(value: 1, echoReply: 0xFFFF_FFFE)),
        OptionCase("timestamps length 8", [8, 8, 0, 0, 0, 1, 0, 0], .raw([8, 8, 0, 0, 0, 1, 0, 0])),
        OptionCase("NOP", [1], .noOperation),
        OptionCase("EOL", [0], .endOfList),
        OptionCase("experimental 253", [0xFD, 4, 0xF9, 0x89], .raw([0xFD, 4, 0xF9, 0x89])),
        OptionCase("fast open cookie request", [34, 2], .raw([34, 2])),
        OptionCase("kind 255 length 2", [0xFF, 2], .raw([0xFF, 2])),
        OptionCase("MPTCP MP_CAPABLE", [30, 4, 0x01, 0x81], .raw([30, 4, 0x01, 0x81]), unspliceable: true),
        OptionCase("TCP-MD5", [19, 18] + [UInt8](repeating: 0xAB, count: 16), .raw([19, 18] + [UInt8](repeating: 0xAB, count: 16)), unspliceable: true),
        OptionCase("TCP-AO", [29, 16, 1, 2] + [UInt8](repeating: 0xCD, count: 12), .raw([29, 16, 1, 2] + [UInt8](repeating: 0xCD, count: 12)), unspliceable: true),
    ]

    /// One option type for parse and emit: whatever an option decodes to encodes back to the
    /// bytes it came from (EOL aside, which ends the list), wherever it sits.
    @Test(arguments: kinds)
    func decodedOptionEncodesToItsBytes(option: OptionCase) throws {
        let p = Self.packet(options: [.maximumSegmentSize(536), .raw(option.bytes)])
        let (_, decoded, _) = try Self.walk(p)
        let again = Self.packet(options: [.maximumSegmentSize(536), decoded[1]])
        #expect(again == p)
        #expect(decoded[1].encodedLength == option.bytes.count)
    }

    @Test(arguments: kinds)
    func decodesEveryKind(option: OptionCase) throws {
        // After an MSS so the option starts at offset 24, then again alone at offset 20.
        for (prefix, offset) in [([TCPOption.maximumSegmentSize(536)], 24), ([], 20)] {
            let p = Self.packet(options: prefix + [.raw(option.bytes)])
            let (slots, decoded, malformed) = try Self.walk(p)
            let i = prefix.count
            #expect(slots[i].kind == option.bytes[0])
            #expect(slots[i].offset == offset)
            #expect(slots[i].length == option.bytes.count)
            #expect(decoded[i] == option.expected)
            #expect(!malformed)
            if option.expected == .endOfList { #expect(slots.count == i + 1) } // nothing after EOL
            var q = p
            try withTCP4(&q) { packet in
                #expect(packet.tcp.options.hasUnspliceableOption == option.unspliceable)
                if !prefix.isEmpty { #expect(packet.tcp.options.maximumSegmentSize == 536) }
            }
            #expect(referenceValid(p))
        }
    }

    @Test(arguments: 1...4)
    func readsSACKBlocks(count: Int) throws {
        let blocks = (0..<count).map { i in
            SackBlock(SeqNumber(0xFFFF_FF00 &+ UInt32(i) * 0x100), SeqNumber(0xFFFF_FF80 &+ UInt32(i) * 0x100))
        }
        // Linux's layout with timestamps: NOP NOP TS NOP NOP SACK (at most 3 blocks fit then).
        let withTS: [TCPOption] = [.noOperation, .noOperation, .timestamp(value: 5, echoReply: 6), .noOperation, .noOperation]
        let layouts: [[TCPOption]] = count <= 3 ? [[], [.noOperation], withTS] : [[], [.noOperation]]
        for prefix in layouts {
            var p = Self.packet(options: prefix + [.sack(blocks)], flags: .ack)
            try withTCP4(&p) { packet in
                let o = packet.tcp.options
                guard let (slot, option) = o.first(kind: TCPOptionKind.sack) else { Issue.record("no SACK"); return }
                #expect(option == .sack(blocks))
                for i in 0..<count {
                    let (l, r) = o.sackBlock(slot, i)
                    #expect(SackBlock(l, r) == blocks[i])
                }
            }
            #expect(try DecodedTCP4(p).sackBlocks == blocks)
        }
    }

    /// RFC 2883 §4: the first block is a D-SACK below the cumulative ACK or inside the second
    /// block; otherwise (or with no SACK, or a block whose edges are reversed) there is none.
    @Test func findsTheDuplicateSACKBlock() throws {
        func dsack(_ blocks: [(UInt32, UInt32)], ack: UInt32) throws -> SackBlock? {
            let options: [TCPOption] = blocks.isEmpty ? [] : [.noOperation, .noOperation,
                                                             .sack(blocks.map { SackBlock(SeqNumber($0.0), SeqNumber($0.1)) })]
            var p = Self.packet(options: options, flags: .ack)
            return try withTCP4(&p) { $0.tcp.options.duplicateSack(ack: SeqNumber(ack)) }
        }
        #expect(try dsack([(500, 1000)], ack: 1000) == SackBlock(SeqNumber(500), SeqNumber(1000)))
        #expect(try dsack([(500, 700)], ack: 1000) == SackBlock(SeqNumber(500), SeqNumber(700)))
        // Across the wrap: 0xFFFF_FF00..0x10 is below an ack of 0x20.
        #expect(try dsack([(0xFFFF_FF00, 0x10)], ack: 0x20) == SackBlock(SeqNumber(0xFFFF_FF00), SeqNumber(0x10)))
        #expect(try dsack([(2000, 2500), (1500, 3000)], ack: 1000) == SackBlock(SeqNumber(2000), SeqNumber(2500)))
        #expect(try dsack([(2000, 2500)], ack: 1000) == nil)
        #expect(try dsack([(2000, 2500), (3000, 3500)], ack: 1000) == nil)
        #expect(try dsack([(1000, 500)], ack: 1000) == nil)
        #expect(try dsack([], ack: 1000) == nil)
    }

    @Test func builderRefusesMoreThanFortyOptionBytes() {
        let five = (0..<5).map { _ in SackBlock(SeqNumber(1), SeqNumber(2)) }
        let spec = TCPPacketSpec(source: endpoint("10.1.0.2:1"), destination: endpoint("10.2.0.2:2"), options: [.sack(five)])
        var buffer = [UInt8](repeating: 0, count: 200)
        let n = buffer.withUnsafeMutableBytes { TCPPacketBuilder.write(spec, payload: UnsafeRawBufferPointer(start: nil, count: 0), into: $0) }
        #expect(n == nil)
        let forty = TCPPacketSpec(source: endpoint("10.1.0.2:1"), destination: endpoint("10.2.0.2:2"),
                                  options: [.raw([0xFD, 40] + [UInt8](repeating: 0, count: 38))])
        #expect(TCPPacketBuilder.bytes(forty).count == 80)
    }

    // MARK: Malformed lists never trap; what was read before stays.

    static let malformed: [MalformedCase] = [
        MalformedCase("length 0", [2, 0, 1, 1], before: []),
        MalformedCase("length 1", [2, 1, 1, 1], before: []),
        MalformedCase("unknown kind length 0", [0xFD, 0, 0, 0], before: []),
        MalformedCase("kind without length byte", [1, 1, 1, 2], before: [1, 1, 1]),
        MalformedCase("timestamps past the header", [1, 8, 10, 0], before: [1]),
        MalformedCase("SACK length 255", [5, 255, 0, 0], before: []),
        MalformedCase("after a good MSS", [2, 4, 5, 180, 8, 10, 1, 1], before: [2]),
        MalformedCase("length 0 after SACK-permitted", [4, 2, 3, 0], before: [4]),
        MalformedCase("40 bytes ending in a lone kind", [UInt8](repeating: 1, count: 39) + [8],
                      before: [UInt8](repeating: 1, count: 39)),
    ]

    @Test(arguments: malformed)
    func malformedListsStopTheWalk(option: MalformedCase) throws {
        let p = Self.packet(options: [.raw(option.bytes)])
        #expect(p.count == 40 + option.bytes.count) // no padding: the bad option reaches the end
        let (slots, _, malformed) = try Self.walk(p)
        #expect(malformed)
        #expect(slots.map(\.kind) == option.before)
        var q = p
        try withTCP4(&q) { packet in
            let o = packet.tcp.options
            #expect(o.isMalformed)
            _ = o.maximumSegmentSize; _ = o.windowScale; _ = o.sackPermitted; _ = o.timestamp
            _ = o.hasUnspliceableOption
        }
        #expect(try DecodedTCP4(p).optionsMalformed)
    }

    @Test func endOfListStopsTheWalkWithoutMalformed() throws {
        // Garbage after EOL (a TS kind with a bad length) is not an option.
        let (slots, decoded, malformed) = try Self.walk(Self.packet(options: [.raw([2, 4, 5, 180, 0, 8, 0, 1])]))
        #expect(slots.map(\.kind) == [2, 0])
        #expect(decoded == [.maximumSegmentSize(1460), .endOfList])
        #expect(!malformed)
    }

    // MARK: Rewrites keep the checksum (checked by a full reference recompute).

    @Test func neutralisingEverySlotKeepsChecksum() throws {
        var p = Fixture.linuxSYN
        let (slots, _, _) = try Self.walk(p)
        for slot in slots {
            try withTCP4(&p) { $0.tcp.options.neutralise(slot) }
            #expect(Array(p[(20 + slot.offset)..<(20 + slot.offset + slot.length)]) == Array(repeating: 1, count: slot.length))
            #expect(referenceValid(p), "after neutralising kind \(slot.kind) at \(slot.offset)")
        }
        let (after, _, malformed) = try Self.walk(p)
        #expect(after.allSatisfy { $0.kind == TCPOptionKind.noOperation })
        #expect(after.count == 20)
        #expect(!malformed)
    }

    @Test func neutralisingTimestampsLeavesOthers() throws {
        var p = Fixture.linuxSYN
        try withTCP4(&p) { packet in
            let o = packet.tcp.options
            guard let (slot, _) = o.first(kind: TCPOptionKind.timestamp) else { Issue.record("no TS"); return }
            o.neutralise(slot)
            #expect(o.timestamp == nil)
            #expect(o.maximumSegmentSize == 1460)
            #expect(o.sackPermitted)
            #expect(o.windowScale == 10)
            #expect(packet.verifyChecksums() == nil)
        }
        #expect(referenceValid(p))
    }

    @Test(arguments: [[], [TCPOption.noOperation]])
    func setSACKBlocksKeepsChecksum(prefix: [TCPOption]) throws {
        let old = (0..<4).map { i in SackBlock(SeqNumber(UInt32(i) * 1000), SeqNumber(UInt32(i) * 1000 + 500)) }
        var p = Self.packet(options: prefix + [.sack(old)], flags: .ack)
        for i in 0..<4 {
            let new = SackBlock(SeqNumber(0xFFFF_FFF0 &+ UInt32(i)), SeqNumber(0x0000_0010 &+ UInt32(i)))
            try withTCP4(&p) { packet in
                let o = packet.tcp.options
                guard let (slot, _) = o.first(kind: TCPOptionKind.sack) else { return }
                o.setSackBlock(slot, i, new.left, new.right)
                let (l, r) = o.sackBlock(slot, i)
                #expect(SackBlock(l, r) == new)
            }
            #expect(referenceValid(p), "block \(i) with prefix \(prefix)")
        }
    }

    @Test(arguments: [[], [TCPOption.noOperation], [.noOperation, .noOperation]])
    func setTimestampKeepsChecksum(prefix: [TCPOption]) throws {
        var p = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", options: prefix + [.timestamp(value: 1, echoReply: 2)],
                     payload: Array("odd".utf8))
        try withTCP4(&p) { packet in
            let o = packet.tcp.options
            guard let (slot, _) = o.first(kind: TCPOptionKind.timestamp) else { return }
            o.setTimestamp(slot, value: 0xFFFF_FFFF, echoReply: 0x8000_0000)
            #expect(o.timestamp?.value == 0xFFFF_FFFF)
            #expect(o.timestamp?.echoReply == 0x8000_0000)
        }
        #expect(referenceValid(p))
    }

    @Test(arguments: [[], [TCPOption.noOperation]])
    func setMaximumSegmentSizeKeepsChecksum(prefix: [TCPOption]) throws {
        var p = Self.packet(options: prefix + [.maximumSegmentSize(1460), .windowScale(7)])
        try withTCP4(&p) { packet in
            let o = packet.tcp.options
            guard let (slot, _) = o.first(kind: TCPOptionKind.maximumSegmentSize) else { return }
            o.setMaximumSegmentSize(slot, 1360)
            #expect(o.maximumSegmentSize == 1360)
            #expect(o.windowScale == 7)
        }
        #expect(referenceValid(p))
    }
}

/// One option's bytes and what decoding them gives.
struct OptionCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let expected: TCPOption
    let unspliceable: Bool
    init(_ name: String, _ bytes: [UInt8], _ expected: TCPOption, unspliceable: Bool = false) {
        self.name = name; self.bytes = bytes; self.expected = expected; self.unspliceable = unspliceable
    }
    var testDescription: String { name }
}

/// Option bytes (a multiple of 4, so they end the header) that make the list malformed, and
/// the kinds read before the walk stops.
struct MalformedCase: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let before: [UInt8]
    init(_ name: String, _ bytes: [UInt8], before: [UInt8]) { self.name = name; self.bytes = bytes; self.before = before }
    var testDescription: String { name }
}
