/// `struct virtio_net_hdr` (virtio spec 1.2 §5.1.6, <linux/virtio_net.h>): the 10 bytes a TUN
/// opened with IFF_VNET_HDR puts in front of each packet, describing a partial checksum to
/// finish and/or a super-segment to cut. Fields are little-endian (modern virtio / TUN's
/// default on little-endian hosts).
///
/// Invariant: a value type decoded from exactly `size` bytes; decoding never fails.
public struct VirtioNetHeader: Sendable, Equatable {
    public static let size = 10
    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at `checksumStart + checksumOffset` holds only
    /// the pseudo-header sum and must be completed over `checksumStart...`.
    public static let needsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified.
    public static let dataValid: UInt8 = 2

    public enum SegmentationType: UInt8, Sendable {
        case none = 0, tcpV4 = 1, udp = 3, tcpV6 = 4, udpL4 = 5, ecn = 0x80
    }

    public var flags: UInt8
    /// gso_type (SegmentationType raw value, possibly with the ECN bit 0x80).
    public var segmentationType: UInt8
    public var headerLength: UInt16
    public var segmentSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(flags: UInt8 = 0, segmentationType: UInt8 = 0, headerLength: UInt16 = 0,
                segmentSize: UInt16 = 0, checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.segmentationType = segmentationType
        self.headerLength = headerLength
        self.segmentSize = segmentSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Decodes the first `size` bytes of `bytes` (missing bytes read as zero).
    public init(_ bytes: UnsafeRawBufferPointer) {
        func byte(_ i: Int) -> UInt8 { i < bytes.count ? bytes[i] : 0 }
        func le16(_ i: Int) -> UInt16 { UInt16(byte(i)) | UInt16(byte(i + 1)) << 8 }
        self.init(flags: byte(0), segmentationType: byte(1), headerLength: le16(2),
                  segmentSize: le16(4), checksumStart: le16(6), checksumOffset: le16(8))
    }

    /// Encodes into the first `size` bytes of `bytes`.
    public func encode(into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= Self.size)
        func le16(_ i: Int, _ v: UInt16) { bytes[i] = UInt8(v & 0xff); bytes[i + 1] = UInt8(v >> 8) }
        bytes[0] = flags
        bytes[1] = segmentationType
        le16(2, headerLength)
        le16(4, segmentSize)
        le16(6, checksumStart)
        le16(8, checksumOffset)
    }
}
