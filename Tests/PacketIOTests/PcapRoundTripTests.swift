import PacketIO
import Wire
import Testing
import TestSupport

/// PcapFileWriter then PcapFileReader, for each link type the writer produces.
@Suite struct PcapRoundTripTests {
    let syn = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.syn], seq: 100)
    let data = tcp4(src: "10.2.0.2:80", dst: "10.1.0.2:40000", seq: 7, ack: 101, payload: Array(0..<200))

    @Test(arguments: [PcapFileWriter.LinkType.linuxSLL, .raw])
    func packetsTimesAndBytesSurvive(linkType: PcapFileWriter.LinkType) throws {
        let path = temporaryPath("roundtrip.pcap")
        defer { removeTemporary(path) }
        let writer = try PcapFileWriter(path: path, linkType: linkType)
        try writer.record(syn, at: Instant(nanoseconds: 1_000_000_001), direction: .inbound)
        try writer.record(data, at: Instant(nanoseconds: 2_500_000_000), direction: .outbound)
        let v6 = ipv6Packet()
        try writer.record(v6, at: Instant(nanoseconds: 3_000_000_999), direction: .outbound)
        try writer.close()
        #expect(writer.packetsWritten == 3)

        let reader = try PcapFileReader(path: path)
        #expect(reader.linkType == (linkType == .raw ? .raw : .linuxSLL))
        let packets = try readAll(reader)
        #expect(packets.map(\.bytes) == [syn, data, v6])
        #expect(packets.map(\.time.nanoseconds) == [1_000_000_001, 2_500_000_000, 3_000_000_999])
        if linkType == .linuxSLL {
            #expect(packets.map(\.direction) == [.inbound, .outbound, .outbound])
        } else {
            #expect(packets.map(\.direction) == [.inbound, .inbound, .inbound])
        }
        #expect(reader.truncatedRecords == 0)
        #expect(reader.skipped.total == 0)
        #expect(reader.stopReason == nil)
    }

    @Test func deviceWriteUsesBatchMetadataAndSkipsDropped() throws {
        let path = temporaryPath("device.pcap")
        defer { removeTemporary(path) }
        let writer = try PcapFileWriter(path: path)
        let batch = PacketBatch(capacity: 3)
        batch.append(syn, at: Instant(nanoseconds: 5), direction: .inbound)
        batch.append(data, at: Instant(nanoseconds: 6), direction: .outbound)
        batch.append(syn, at: Instant(nanoseconds: 7), direction: .outbound)
        batch.markDropped(2)
        #expect(try writer.write(batch, 0..<3) == 3)
        try writer.close()

        let packets = try readAll(try PcapFileReader(path: path))
        #expect(packets.map(\.bytes) == [syn, data])
        #expect(packets.map(\.direction) == [.inbound, .outbound])
        #expect(packets.map(\.time.nanoseconds) == [5, 6])
    }

    @Test func snapLengthCutsPacketsAndReaderCountsThem() throws {
        let path = temporaryPath("snap.pcap")
        defer { removeTemporary(path) }
        let writer = try PcapFileWriter(path: path, linkType: .linuxSLL, snapLength: 64)
        try writer.record(data, at: Instant(nanoseconds: 1), direction: .inbound)
        try writer.close()

        let reader = try PcapFileReader(path: path)
        let packets = try readAll(reader)
        #expect(packets.map(\.bytes) == [Array(data.prefix(64 - 16))])
        #expect(reader.truncatedRecords == 1)
    }

    @Test func recordsLargerThanTheWriteBufferAndManyFlushes() throws {
        let path = temporaryPath("flush.pcap")
        defer { removeTemporary(path) }
        let writer = try PcapFileWriter(path: path, linkType: .raw, bufferBytes: 128)
        let big = tcp4(src: "10.1.0.2:1", dst: "10.2.0.2:2", payload: Array(repeating: 0x5A, count: 1000))
        for i in 0..<50 {
            let packet = i % 2 == 0 ? syn : big
            try writer.record(packet, at: Instant(nanoseconds: UInt64(i)), direction: .inbound)
        }
        try writer.close()
        let packets = try readAll(try PcapFileReader(path: path), capacity: 7)
        #expect(packets.count == 50)
        #expect(packets.enumerated().allSatisfy { $0.element.bytes == ($0.offset % 2 == 0 ? syn : big) })
    }

    @Test func batchOfOneLosesNothingBetweenCalls() throws {
        let path = temporaryPath("one.pcap")
        defer { removeTemporary(path) }
        let writer = try PcapFileWriter(path: path)
        for packet in [syn, data, syn] {
            try writer.record(packet, at: Instant(nanoseconds: 1), direction: .inbound)
        }
        try writer.close()
        let reader = try PcapFileReader(path: path)
        let batch = PacketBatch(capacity: 1)
        var seen: [[UInt8]] = []
        while !reader.isExhausted {
            batch.removeAll()
            if try reader.read(into: batch) == 1 { seen.append(batch.bytes(0)) }
        }
        #expect(seen == [syn, data, syn])
        #expect(reader.recordsRead == 3 && reader.packetsDelivered == 3)
    }

    @Test func writerClosedByDeinitStillFlushes() throws {
        let path = temporaryPath("deinit.pcap")
        defer { removeTemporary(path) }
        do {
            let writer = try PcapFileWriter(path: path)
            try writer.record(syn, at: Instant(nanoseconds: 1), direction: .inbound)
        }
        #expect(try readAll(try PcapFileReader(path: path)).map(\.bytes) == [syn])
    }
}
