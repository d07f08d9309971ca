import PacketIO
import Testing
import TestSupport
import Wire

/// PcapFileWriter's pcapng format (what `tsmp proxy --capture` writes): the blocks are well
/// formed (a strict walk of the file, independent of the writer), packets carry their comments
/// (`opt_comment`), libpcap reads the file back like a classic one, and so does tshark.
@Suite struct PcapngWriterTests {
    let syn = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.syn], seq: 100)
    let data = tcp4(src: "10.2.0.2:80", dst: "10.1.0.2:40000", seq: 7, ack: 101, payload: Array(0..<201))

    /// A few packets, the second with two comments, the third with one (odd lengths: padding).
    func writeSample(_ path: String, linkType: PcapFileWriter.LinkType = .linuxSLL, bufferBytes: Int = 1 << 20) throws {
        let writer = try PcapFileWriter(path: path, linkType: linkType, format: .pcapng, bufferBytes: bufferBytes)
        try writer.record(syn, at: Instant(nanoseconds: 1_700_000_000_123_456_789), direction: .inbound)
        try writer.record(data, at: Instant(nanoseconds: 1_700_000_001_000_000_001), direction: .outbound,
                          comments: ["tsmp: migration 1 flow 3 phase requested", "tsmp: migration 1 flow 3 phase paused (é)"])
        try writer.record(syn, at: Instant(nanoseconds: 1_700_000_002_000_000_000), direction: .outbound, comments: ["x"])
        try writer.close()
        #expect(writer.packetsWritten == 3)
    }

    @Test(arguments: [PcapFileWriter.LinkType.linuxSLL, .raw])
    func blocksAreWellFormedAndCarryTheComments(linkType: PcapFileWriter.LinkType) throws {
        let path = temporaryPath("comments.pcapng")
        defer { removeTemporary(path) }
        try writeSample(path, linkType: linkType)
        let scan = try PcapngScan(path: path)
        #expect(scan.blockTypes == [0x0A0D_0D0A, 1, 6, 6, 6])
        #expect(scan.linkType == (linkType == .raw ? 101 : 113))
        #expect(scan.timestampResolution == 9)
        #expect(scan.packets.map(\.comments) == [[], ["tsmp: migration 1 flow 3 phase requested",
                                                      "tsmp: migration 1 flow 3 phase paused (é)"], ["x"]])
        #expect(scan.packets.map(\.timestampNanoseconds) == [1_700_000_000_123_456_789, 1_700_000_001_000_000_001,
                                                              1_700_000_002_000_000_000])
        let header = linkType == .raw ? 0 : 16
        #expect(scan.packets.map { Array($0.frame.dropFirst(header)) } == [syn, data, syn])
        #expect(scan.packets.map(\.originalLength) == [syn.count + header, data.count + header, syn.count + header])
    }

    @Test("libpcap reads a pcapng capture as it reads a classic one: bytes, nanosecond times, directions")
    func libpcapReadsIt() throws {
        let path = temporaryPath("libpcap.pcapng")
        defer { removeTemporary(path) }
        try writeSample(path)
        let reader = try PcapFileReader(path: path)
        #expect(reader.linkType == .linuxSLL)
        let packets = try readAll(reader)
        #expect(packets.map(\.bytes) == [syn, data, syn])
        #expect(packets.map(\.time.nanoseconds) == [1_700_000_000_123_456_789, 1_700_000_001_000_000_001, 1_700_000_002_000_000_000])
        #expect(packets.map(\.direction) == [.inbound, .outbound, .outbound])
        #expect(reader.stopReason == nil && reader.skipped.total == 0)
    }

    @Test("a write buffer smaller than a packet and its comments: every block still whole and in order")
    func smallBufferManyFlushes() throws {
        let path = temporaryPath("flush.pcapng")
        defer { removeTemporary(path) }
        let writer = try PcapFileWriter(path: path, linkType: .raw, format: .pcapng, bufferBytes: 64)
        let big = tcp4(src: "10.1.0.2:1", dst: "10.2.0.2:2", payload: Array(repeating: 0x5A, count: 1001))
        let long = String(repeating: "long comment ", count: 20)
        for i in 0..<30 {
            try writer.record(i % 2 == 0 ? syn : big, at: Instant(nanoseconds: UInt64(i)), direction: .inbound,
                              comments: i % 3 == 0 ? [long, "#\(i)"] : [])
        }
        try writer.close()
        let scan = try PcapngScan(path: path)
        #expect(scan.packets.count == 30)
        #expect(scan.packets.enumerated().allSatisfy { i, p in
            p.frame == (i % 2 == 0 ? syn : big) && p.comments == (i % 3 == 0 ? [long, "#\(i)"] : [])
        })
        #expect(try readAll(try PcapFileReader(path: path)).count == 30)
    }

    @Test("a comment longer than the limit is cut at a character boundary (the option length fits 16 bits)")
    func longCommentCut() throws {
        let path = temporaryPath("long.pcapng")
        defer { removeTemporary(path) }
        // "é" is two bytes: at an odd limit a byte count cut would split one.
        let comment = "a" + String(repeating: "é", count: PcapngBlock.maximumCommentBytes)
        let writer = try PcapFileWriter(path: path, format: .pcapng)
        try writer.record(syn, at: Instant(nanoseconds: 1), direction: .inbound, comments: [comment])
        try writer.close()
        let kept = try #require(try PcapngScan(path: path).packets.first?.comments.first)
        #expect(kept.utf8.count <= PcapngBlock.maximumCommentBytes && kept.utf8.count >= PcapngBlock.maximumCommentBytes - 1)
        #expect(comment.hasPrefix(kept) && !kept.contains("\u{FFFD}"))
    }

    @Test("a classic pcap has no place for comments: they are left out, the packets are kept")
    func classicLeavesCommentsOut() throws {
        let path = temporaryPath("classic.pcap")
        defer { removeTemporary(path) }
        let writer = try PcapFileWriter(path: path)
        try writer.record(syn, at: Instant(nanoseconds: 1), direction: .inbound, comments: ["not kept"])
        try writer.close()
        #expect(try readAll(try PcapFileReader(path: path)).map(\.bytes) == [syn])
        #expect(throws: PcapngScan.Malformed.self) { try PcapngScan(path: path) }
    }

    @Test("tshark reads the comments as frame.comment, in packet order",
          .enabled(if: Tshark.path != nil, "tshark is not installed (apt-get install tshark)"))
    func tsharkReadsTheComments() async throws {
        let path = temporaryPath("tshark.pcapng")
        defer { removeTemporary(path) }
        try writeSample(path)
        let lines = try await Tshark.fields(path, ["frame.number", "frame.comment", "tcp.srcport"]).get()
        #expect(lines.count == 3, "\(lines)")
        let fields = lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(fields.map { $0.first } == ["1", "2", "3"])
        #expect(fields[0][1].isEmpty)
        // Several comments of one frame: tshark separates them with commas.
        #expect(fields[1][1] == "tsmp: migration 1 flow 3 phase requested,tsmp: migration 1 flow 3 phase paused (é)")
        #expect(fields[2][1] == "x")
        #expect(fields.map { $0.last } == ["40000", "80", "40000"], "tshark dissected the cooked header and TCP")
    }
}
