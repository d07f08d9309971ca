import PacketIO
import Wire
import Testing
import TestSupport

/// The reader on hand-built files of every supported link type (tcpdump.org/linktypes.html).
@Suite struct PcapLinkTypeTests {
    let ip4 = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.syn], seq: 1)
    let ip6 = ipv6Packet()

    func read(_ file: PcapBytes) throws -> (PcapFileReader, [(bytes: [UInt8], time: Instant, direction: PacketDirection)]) {
        let path = temporaryPath("linktype.pcap")
        defer { removeTemporary(path) }
        try writeFile(path, file.bytes)
        let reader = try PcapFileReader(path: path)
        return (reader, try readAll(reader))
    }

    static func ethernet(_ type: UInt16, vlanTags: [UInt16] = []) -> [UInt8] {
        var frame: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]
        for tag in vlanTags { frame += [UInt8(tag >> 8), UInt8(tag & 0xff), 0x00, 0x0A] }
        return frame + [UInt8(type >> 8), UInt8(type & 0xff)]
    }

    @Test func ethernetWithVLANTagsPaddingAndNonIP() throws {
        var file = PcapBytes(linkType: 1)
        file.add(Self.ethernet(0x0800) + ip4 + [0, 0, 0, 0, 0, 0])          // padded to 60
        file.add(Self.ethernet(0x86DD, vlanTags: [0x8100]) + ip6)
        file.add(Self.ethernet(0x0800, vlanTags: [0x88A8, 0x8100]) + ip4)
        file.add(Self.ethernet(0x0806) + [UInt8](repeating: 0, count: 28))    // ARP
        file.add([1, 2, 3])                                                   // runt
        file.add(Self.ethernet(0x8100))                                       // tag cut off
        let (reader, packets) = try read(file)
        #expect(reader.linkType == .ethernet)
        #expect(packets.map(\.bytes) == [ip4, ip6, ip4])
        #expect(reader.skipped.notIP == 1)
        #expect(reader.skipped.truncatedLinkHeader == 2)
        #expect(reader.recordsRead == 6)
    }

    static func sll(packetType: UInt16, protocol: UInt16) -> [UInt8] {
        [UInt8(packetType >> 8), UInt8(packetType & 0xff), 0xFF, 0xFE, 0, 0] + [UInt8](repeating: 0, count: 8)
            + [UInt8(`protocol` >> 8), UInt8(`protocol` & 0xff)]
    }

    @Test func linuxSLLOutgoingIsOutbound() throws {
        var file = PcapBytes(linkType: 113)
        file.add(Self.sll(packetType: 0, protocol: 0x0800) + ip4)
        file.add(Self.sll(packetType: 4, protocol: 0x86DD) + ip6)
        file.add(Self.sll(packetType: 3, protocol: 0x0800) + ip4)   // "otherhost": inbound
        file.add(Self.sll(packetType: 0, protocol: 0x0806) + ip4)   // claims ARP
        let (reader, packets) = try read(file)
        #expect(packets.map(\.bytes) == [ip4, ip6, ip4])
        #expect(packets.map(\.direction) == [.inbound, .outbound, .inbound])
        #expect(reader.skipped.notIP == 1)
    }

    static func sll2(packetType: UInt8, protocol: UInt16) -> [UInt8] {
        [UInt8(`protocol` >> 8), UInt8(`protocol` & 0xff), 0, 0, 0, 0, 0, 3, 0x00, 0x01, packetType, 6]
            + [UInt8](repeating: 0, count: 8)
    }

    @Test func linuxSLL2OutgoingIsOutbound() throws {
        var file = PcapBytes(linkType: 276)
        file.add(Self.sll2(packetType: 4, protocol: 0x0800) + ip4)
        file.add(Self.sll2(packetType: 0, protocol: 0x86DD) + ip6)
        file.add(Array(Self.sll2(packetType: 0, protocol: 0x0800).prefix(19)))
        let (reader, packets) = try read(file)
        #expect(reader.linkType == .linuxSLL2)
        #expect(packets.map(\.bytes) == [ip4, ip6])
        #expect(packets.map(\.direction) == [.outbound, .inbound])
        #expect(reader.skipped.truncatedLinkHeader == 1)
    }

    @Test func nullAcceptsEitherByteOrderAndEveryAF_INET6() throws {
        var file = PcapBytes(linkType: 0)
        file.add([2, 0, 0, 0] + ip4)        // AF_INET, little-endian host
        file.add([0, 0, 0, 2] + ip4)        // AF_INET, big-endian host
        file.add([10, 0, 0, 0] + ip6)       // Linux AF_INET6
        file.add([0, 0, 0, 30] + ip6)       // macOS AF_INET6
        file.add([0, 0, 0, 24] + ip6)       // NetBSD/OpenBSD AF_INET6
        file.add([7, 0, 0, 0] + ip4)        // something else
        let (reader, packets) = try read(file)
        #expect(reader.linkType == .null)
        #expect(packets.map(\.bytes) == [ip4, ip4, ip6, ip6, ip6])
        #expect(reader.skipped.notIP == 1)
    }

    @Test func loopIsNetworkOrder() throws {
        var file = PcapBytes(linkType: 108)
        file.add([0, 0, 0, 2] + ip4)
        file.add([0, 0, 0, 24] + ip6)
        let (reader, packets) = try read(file)
        #expect(reader.linkType == .loop)
        #expect(packets.map(\.bytes) == [ip4, ip6])
    }

    @Test(arguments: [(UInt32(228), PcapLinkType.ipv4), (229, .ipv6), (101, .raw)])
    func bareIPLinkTypes(value: UInt32, type: PcapLinkType) throws {
        var file = PcapBytes(linkType: value)
        file.add(type == .ipv6 ? ip6 : ip4)
        file.add([0x50, 1, 2, 3])            // version 5: not IP
        let (reader, packets) = try read(file)
        #expect(reader.linkType == type)
        #expect(packets.map(\.bytes) == [type == .ipv6 ? ip6 : ip4])
        #expect(reader.skipped.notIP == 1)
    }

    @Test func microsecondAndBigEndianFilesGiveNanoseconds() throws {
        var micro = PcapBytes(linkType: 101, nanoseconds: false)
        micro.add(ip4, seconds: 10, fraction: 123_456)
        #expect(try read(micro).1.map(\.time.nanoseconds) == [10_123_456_000])

        var swapped = PcapBytes(linkType: 101, nanoseconds: true, bigEndian: true)
        swapped.add(ip4, seconds: 3, fraction: 999_999_999)
        let (_, packets) = try read(swapped)
        #expect(packets.map(\.bytes) == [ip4])
        #expect(packets.map(\.time.nanoseconds) == [3_999_999_999])
    }

    @Test func unsupportedLinkTypeIsAClearErrorAtOpen() throws {
        let path = temporaryPath("wifi.pcap")
        defer { removeTemporary(path) }
        var file = PcapBytes(linkType: 105)   // IEEE 802.11
        file.add([0, 1, 2])
        try writeFile(path, file.bytes)
        do {
            _ = try PcapFileReader(path: path)
            Issue.record("opened a link type we cannot read")
        } catch {
            guard case .unsupportedLinkType(let p, let dlt, let name) = error else {
                Issue.record("wrong error \(error)"); return
            }
            #expect(p == path && dlt == 105 && name == "IEEE802_11")
            #expect(error.description.contains(path))
        }
    }

    @Test func packetTooLargeForTheBatchIsSkippedAndCounted() throws {
        let path = temporaryPath("large.pcap")
        defer { removeTemporary(path) }
        var file = PcapBytes(linkType: 101)
        file.add(ip6)   // 44 bytes
        file.add(ip4)   // 40 bytes
        try writeFile(path, file.bytes)
        let reader = try PcapFileReader(path: path)
        let packets = try readAll(reader, maxPacket: 43)
        #expect(packets.map(\.bytes) == [ip4])
        #expect(reader.skipped.tooLargeForBatch == 1)
    }
}
