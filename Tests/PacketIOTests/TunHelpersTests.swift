@testable import PacketIO
import Testing
import Wire
import TestSupport

/// The parts of TunDevice that need no TUN.
@Suite struct TunHelpersTests {
    @Test func virtioNetHeaderRoundTripIsLittleEndian() {
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                     segmentationType: VirtioNetHeader.SegmentationType.tcpV4.rawValue,
                                     headerLength: 54, segmentSize: 1448, checksumStart: 34, checksumOffset: 16)
        var bytes = [UInt8](repeating: 0xFF, count: 12)
        bytes.withUnsafeMutableBytes { header.encode(into: $0) }
        #expect(bytes == [1, 1, 54, 0, 0xA8, 0x05, 34, 0, 16, 0, 0xFF, 0xFF])
        #expect(bytes.withUnsafeBytes { VirtioNetHeader($0) } == header)
        #expect([UInt8]([1, 4]).withUnsafeBytes { VirtioNetHeader($0) } == VirtioNetHeader(flags: 1, segmentationType: 4))
    }

    /// How a read cut short by the kernel is recognised: the IP header declares more.
    @Test func declaredLengthOfIPv4IPv6AndJunk() {
        func declared(_ bytes: [UInt8]) -> Int {
            var copy = bytes
            return copy.withUnsafeMutableBytes { TunDevice.declaredLength($0[...]) }
        }
        let syn = tcp4(src: "10.1.0.2:1", dst: "10.2.0.2:2", flags: [.syn], payload: [1, 2, 3])
        #expect(declared(syn) == syn.count)
        #expect(declared(Array(syn.prefix(20))) == syn.count)
        #expect(declared(ipv6Packet(payload: [1, 2])) == 42)
        #expect(declared([]) == 0)
        #expect(declared([0x45]) == 0)
        #expect(declared([0x00, 1, 2, 3, 4, 5]) == 0)
    }

    @Test func offloadFlagsMirrorTheKernel() {
        #expect(TunOffloads.checksum.rawValue == 0x01)
        #expect(TunOffloads.tcp4Segmentation.rawValue == 0x02)
        #expect(TunOffloads.tcp6Segmentation.rawValue == 0x04)
        #expect(TunOffloads.tcpSegmentationECN.rawValue == 0x08)
    }
}
