import Testing
import TestSupport
import Wire

/// One walk of the options answers what the packet path asks; it agrees with `TCPOptions`.
@Suite struct TCPOptionScanTests {
    static func scan(_ options: [TCPOption]) throws -> (TCPOptionScan, UInt32?, TCPOptions.Answers) {
        var p = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", options: options, payload: [1, 2, 3])
        return try withTCP4(&p) { packet in
            let s = TCPOptionScan(packet.tcp)
            let o = packet.tcp.options
            return (s, s.timestampValue(in: packet.tcp),
                    .init(malformed: o.isMalformed, timestamp: o.timestamp?.value, unspliceable: o.hasUnspliceableOption,
                          sack: o.contains { $0.kind == TCPOptionKind.sack }))
        }
    }

    @Test("agrees with the option walk", arguments: [
        [],
        [.noOperation, .noOperation, .timestamp(value: 0xDEAD_BEEF, echoReply: 1)],           // the fast path
        [.timestamp(value: 5, echoReply: 6)],                                                   // TS first, padded
        [.noOperation, .noOperation, .timestamp(value: 9, echoReply: 1), .noOperation, .noOperation,
         .sack([SackBlock(SeqNumber(10), SeqNumber(20))])],
        [.maximumSegmentSize(1460), .sackPermitted, .timestamp(value: 1, echoReply: 0), .noOperation, .windowScale(7)],
        [.raw([30, 4, 0, 0])],                                                                  // MPTCP
        [.raw([19, 18] + [UInt8](repeating: 0, count: 16))],                                    // TCP-MD5
        [.raw([8, 6, 0, 0, 0, 1])],                                                             // TS of a wrong length: none
        [.noOperation, .raw([5, 1])],                                                           // length below 2: malformed
    ] as [[TCPOption]])
    func agrees(_ options: [TCPOption]) throws {
        let (s, ts, want) = try Self.scan(options)
        #expect(s.isMalformed == want.malformed)
        #expect(ts == want.timestamp)
        #expect(s.hasUnspliceableOption == want.unspliceable)
        #expect(s.hasSACK == want.sack)
    }

    @Test("the usual data segment's layout is read without a walk, at offset 22")
    func fastPath() throws {
        let (s, ts, _) = try Self.scan([.noOperation, .noOperation, .timestamp(value: 77, echoReply: 1)])
        #expect(s.timestampOffset == 22 && ts == 77 && !s.isMalformed && !s.hasSACK)
    }
}

extension TCPOptions {
    struct Answers {
        var malformed: Bool
        var timestamp: UInt32?
        var unspliceable: Bool
        var sack: Bool
    }
}
