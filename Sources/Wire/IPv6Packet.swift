/// A view over an IPv6 packet (RFC 8200 §3) with its extension-header chain walked
/// (`IPv6HeaderChain`: hop-by-hop, routing, destination options; a fragment header stops it).
///
/// After `init(validating:)`: version is 6, `40 + payloadLength <= bytes.count`, the chain
/// lies inside the payload (`transportOffset <= totalLength`), there is no fragment header and
/// it is no jumbogram. Bytes past `totalLength` (link padding) are ignored. IPv6 has no header
/// checksum, so the setters change only their field.
public struct IPv6Packet {
    public let bytes: UnsafeMutableRawBufferPointer
    /// The protocol of the upper layer after extension headers.
    public let transportProtocol: UInt8
    /// Where the upper-layer header starts.
    public let transportOffset: Int
    /// A routing header's segments left, 0 without one (`IPv6HeaderChain.routingSegmentsLeft`).
    public let routingSegmentsLeft: UInt8
    public static let headerLength = 40

    @usableFromInline enum Field {
        @usableFromInline static let versionClassFlow = 0, payloadLength = 4, nextHeader = 6, hopLimit = 7
        @usableFromInline static let source = 8, destination = 24
    }

    /// Checks the fixed header and walks the extension headers. Throws `.fragment` for any
    /// packet with a fragment header (never parsed as its upper layer), `.jumbogram` for
    /// payload length 0 with a hop-by-hop header (RFC 2675 §3), `.truncated` when the payload
    /// length runs past the bytes, `.badExtensionHeader` for a chain that does not fit it.
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard bytes.count >= IPv6Packet.headerLength else { throw .truncated }
        guard bytes[0] >> 4 == 6 else { throw .badVersion }
        let payloadLength = Int(bytes.u16(Field.payloadLength))
        let first = bytes[Field.nextHeader]
        if payloadLength == 0 && first == IPv6HeaderChain.Next.hopByHop { throw .jumbogram }
        let end = IPv6Packet.headerLength + payloadLength
        guard end <= bytes.count else { throw .truncated }
        let chain = try IPv6HeaderChain.walk(UnsafeRawBufferPointer(bytes), first: first,
                                             start: IPv6Packet.headerLength, end: end)
        guard chain.fragment == nil else { throw .fragment }
        self.bytes = bytes
        self.transportProtocol = chain.upperProtocol
        self.transportOffset = chain.upperOffset
        self.routingSegmentsLeft = chain.routingSegmentsLeft
    }

    /// Unchecked: for builders that have just written a header without extension headers.
    @usableFromInline init(unchecked bytes: UnsafeMutableRawBufferPointer, transportProtocol: UInt8) {
        self.bytes = bytes
        self.transportProtocol = transportProtocol
        self.transportOffset = IPv6Packet.headerLength
        self.routingSegmentsLeft = 0
    }

    @inlinable public var payloadLength: Int { Int(bytes.u16(Field.payloadLength)) }
    @inlinable public var totalLength: Int { IPv6Packet.headerLength + payloadLength }
    /// The fixed header's next header (the first extension header, or the upper layer).
    @inlinable public var nextHeader: UInt8 { bytes[Field.nextHeader] }
    @inlinable public var hopLimit: UInt8 { bytes[Field.hopLimit] }
    /// DSCP and ECN (RFC 8200 §7, RFC 2474, RFC 3168 §5).
    @inlinable public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: bytes.u16(Field.versionClassFlow) >> 4) }
    /// The 20-bit flow label (RFC 6437).
    @inlinable public var flowLabel: UInt32 { bytes.u32(Field.versionClassFlow) & 0x000F_FFFF }
    @inlinable public var source: IPv6Address { IPv6Address(bytes, at: Field.source) }
    @inlinable public var destination: IPv6Address { IPv6Address(bytes, at: Field.destination) }
    /// The extension headers' length (0 without any).
    @inlinable public var extensionHeadersLength: Int { transportOffset - IPv6Packet.headerLength }

    /// The upper-layer bytes.
    @inlinable public var payload: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[transportOffset..<totalLength])
    }

    /// Pseudo-header sum for the upper layer (RFC 8200 §8.1: source, destination, 32-bit
    /// upper-layer length, next header = the upper layer's protocol), unfolded.
    @inlinable public func pseudoHeaderSum(transportLength length: Int) -> UInt32 {
        IPv6Packet.pseudoHeaderSum(source: source, destination: destination,
                                   transportLength: length, protocolNumber: transportProtocol)
    }

    /// The same from values (builders, a rewrite that knows its final addresses).
    @inlinable public static func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address,
                                                  transportLength length: Int, protocolNumber: UInt8) -> UInt32 {
        let l = UInt32(truncatingIfNeeded: length)
        return source.wordSum + destination.wordSum + (l >> 16) + (l & 0xFFFF) + UInt32(protocolNumber)
    }

    // MARK: Setters (no header checksum in IPv6; the caller fixes the transport checksum)

    @inlinable public func setSource(_ a: IPv6Address) {
        bytes.setU64(Field.source, a.high)
        bytes.setU64(Field.source + 8, a.low)
    }
    @inlinable public func setDestination(_ a: IPv6Address) {
        bytes.setU64(Field.destination, a.high)
        bytes.setU64(Field.destination + 8, a.low)
    }
    /// Sets the payload length (extension headers and upper layer, RFC 8200 §3); at most 65535.
    @inlinable public func setPayloadLength(_ n: Int) { bytes.setU16(Field.payloadLength, UInt16(clamping: n)) }
    @inlinable public func setHopLimit(_ v: UInt8) { bytes[Field.hopLimit] = v }
    /// Decrements the hop limit (RFC 8200 §3: by each node that forwards the packet).
    @inlinable public func decrementHopLimit() { bytes[Field.hopLimit] &-= 1 }
    @inlinable public func setTrafficClass(_ v: UInt8) {
        let word = bytes.u32(Field.versionClassFlow)
        bytes.setU32(Field.versionClassFlow, word & 0xF00F_FFFF | UInt32(v) << 20)
    }
    /// Sets the flow label's 20 bits (higher bits of `v` are ignored).
    @inlinable public func setFlowLabel(_ v: UInt32) {
        let word = bytes.u32(Field.versionClassFlow)
        bytes.setU32(Field.versionClassFlow, word & 0xFFF0_0000 | v & 0x000F_FFFF)
    }
}
