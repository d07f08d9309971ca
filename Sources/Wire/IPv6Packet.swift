/// A view over an IPv6 packet (RFC 8200 §3) with its extension-header chain walked
/// (RFC 8200 §4: hop-by-hop, routing, destination options; a fragment header stops the walk).
///
/// After `init(validating:)`: version is 6, `40 + payloadLength <= bytes.count`, and
/// `transportOffset <= 40 + payloadLength`.
public struct IPv6Packet {
    public let bytes: UnsafeMutableRawBufferPointer
    /// The protocol of the upper layer after extension headers.
    public let transportProtocol: UInt8
    /// Where the upper-layer header starts.
    public let transportOffset: Int
    public static let headerLength = 40

    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard bytes.count >= IPv6Packet.headerLength else { throw .truncated }
        guard bytes[0] >> 4 == 6 else { throw .badVersion }
        let end = IPv6Packet.headerLength + Int(bytes.u16(4))
        guard end <= bytes.count else { throw .truncated }
        var next = bytes[6]
        var offset = IPv6Packet.headerLength
        var hops = 0
        // Bounded walk: at most 8 extension headers, each inside the packet.
        while hops < 8 {
            switch next {
            case 0, 43, 60: // hop-by-hop, routing, destination options
                guard offset + 8 <= end else { throw .badExtensionHeader }
                let len = (Int(bytes[offset + 1]) + 1) * 8
                guard offset + len <= end else { throw .badExtensionHeader }
                next = bytes[offset]
                offset += len
                hops += 1
            case 44: // fragment
                throw .fragment
            default:
                hops = 8
            }
        }
        // The walk may stop on its bound with a fragment or extension header still next.
        guard next != 44 else { throw .fragment }
        guard next != 0 && next != 43 && next != 60 else { throw .badExtensionHeader }
        self.bytes = bytes
        self.transportProtocol = next
        self.transportOffset = offset
    }

    public var payloadLength: Int { Int(bytes.u16(4)) }
    public var totalLength: Int { IPv6Packet.headerLength + payloadLength }
    public var nextHeader: UInt8 { bytes[6] }
    public var hopLimit: UInt8 { bytes[7] }
    public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: bytes.u16(0) >> 4) }
    public var flowLabel: UInt32 { bytes.u32(0) & 0x000F_FFFF }
    public var source: IPv6Address { address(at: 8) }
    public var destination: IPv6Address { address(at: 24) }

    /// The upper-layer bytes.
    public var payload: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[transportOffset..<totalLength])
    }

    /// Pseudo-header sum for the upper layer (RFC 8200 §8.1).
    public func pseudoHeaderSum(transportLength length: Int) -> UInt32 {
        var s: UInt32 = 0
        for i in stride(from: 8, to: 40, by: 2) { s += UInt32(bytes.u16(i)) }
        s += UInt32(length >> 16) + UInt32(length & 0xFFFF) + UInt32(transportProtocol)
        return s
    }

    private func address(at o: Int) -> IPv6Address {
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(bytes[o + i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(bytes[o + i]) }
        return IPv6Address(high: hi, low: lo)
    }
}
