/// A view over an IPv4 datagram (RFC 791 §3.1). Field offsets live here and nowhere else.
///
/// After `init(validating:)` succeeds: version is 4, `20 <= headerLength <= totalLength <=
/// bytes.count`; every accessor stays inside `bytes[0..<totalLength]`. Bytes past
/// `totalLength` (link padding) are ignored.
public struct IPv4Packet {
    public let bytes: UnsafeMutableRawBufferPointer

    @usableFromInline enum Field {
        @usableFromInline static let versionIHL = 0, tos = 1, totalLength = 2, identification = 4, flagsFragment = 6
        @usableFromInline static let ttl = 8, proto = 9, checksum = 10, source = 12, destination = 16
    }
    public static let minimumHeaderLength = 20

    /// Checks the header's shape (not its checksum: see `verifyHeaderChecksum`).
    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard bytes.count >= IPv4Packet.minimumHeaderLength else { throw .truncated }
        guard bytes[0] >> 4 == 4 else { throw .badVersion }
        let ihl = Int(bytes[0] & 0x0F) * 4
        guard ihl >= IPv4Packet.minimumHeaderLength else { throw .badHeaderLength }
        guard ihl <= bytes.count else { throw .truncated }
        let total = Int(bytes.u16(Field.totalLength))
        guard total >= ihl else { throw .badTotalLength }
        guard total <= bytes.count else { throw .truncated }
        self.bytes = bytes
    }

    /// Unchecked: for builders that have just written a valid header.
    @usableFromInline init(unchecked bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

    @inlinable public var headerLength: Int { Int(bytes[0] & 0x0F) * 4 }
    @inlinable public var totalLength: Int { Int(bytes.u16(Field.totalLength)) }
    @inlinable public var tos: UInt8 { bytes[Field.tos] }
    @inlinable public var identification: UInt16 { bytes.u16(Field.identification) }
    @inlinable public var dontFragment: Bool { bytes[Field.flagsFragment] & 0x40 != 0 }
    @inlinable public var moreFragments: Bool { bytes[Field.flagsFragment] & 0x20 != 0 }
    @inlinable public var fragmentOffset: Int { Int(bytes.u16(Field.flagsFragment) & 0x1FFF) * 8 }
    /// True for any fragment (first or later): such datagrams are not spliced.
    @inlinable public var isFragment: Bool { moreFragments || fragmentOffset != 0 }
    @inlinable public var ttl: UInt8 { bytes[Field.ttl] }
    @inlinable public var protocolNumber: UInt8 { bytes[Field.proto] }
    @inlinable public var headerChecksum: UInt16 { bytes.u16(Field.checksum) }
    @inlinable public var source: IPv4Address { IPv4Address(bytes.u32(Field.source)) }
    @inlinable public var destination: IPv4Address { IPv4Address(bytes.u32(Field.destination)) }

    /// The bytes after the header up to `totalLength` (the transport segment).
    @inlinable public var payload: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[headerLength..<totalLength])
    }

    /// True when the header checksum is right (RFC 791 §3.1).
    @inlinable public var verifyHeaderChecksum: Bool {
        InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: bytes[0..<headerLength])) == 0xFFFF
    }

    /// Recomputes the header checksum from scratch (builders).
    @inlinable public func fillHeaderChecksum() {
        bytes.setU16(Field.checksum, 0)
        bytes.setU16(Field.checksum, InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<headerLength])))
    }

    /// The one's-complement sum of the TCP/UDP pseudo-header (RFC 9293 §3.1) for `length`.
    @inlinable public func pseudoHeaderSum(transportLength length: Int) -> UInt32 {
        var s = UInt32(bytes.u16(Field.source)) + UInt32(bytes.u16(Field.source + 2))
        s += UInt32(bytes.u16(Field.destination)) + UInt32(bytes.u16(Field.destination + 2))
        s += UInt32(protocolNumber) + UInt32(length)
        return s
    }

    // MARK: Setters (keep the header checksum right, RFC 1624)

    /// Sets the source address; returns the old one so the caller can fix the transport checksum.
    @inlinable public func setSource(_ a: IPv4Address) {
        let old = bytes.u32(Field.source)
        bytes.setU32(Field.source, a.value)
        bytes.setU16(Field.checksum, InternetChecksum.update(headerChecksum, old: old, new: a.value))
    }
    @inlinable public func setDestination(_ a: IPv4Address) {
        let old = bytes.u32(Field.destination)
        bytes.setU32(Field.destination, a.value)
        bytes.setU16(Field.checksum, InternetChecksum.update(headerChecksum, old: old, new: a.value))
    }
    @inlinable public func setTotalLength(_ n: Int) {
        let old = bytes.u16(Field.totalLength)
        bytes.setU16(Field.totalLength, UInt16(n))
        bytes.setU16(Field.checksum, InternetChecksum.update(headerChecksum, old: old, new: UInt16(n)))
    }
    @inlinable public func setIdentification(_ v: UInt16) {
        let old = bytes.u16(Field.identification)
        bytes.setU16(Field.identification, v)
        bytes.setU16(Field.checksum, InternetChecksum.update(headerChecksum, old: old, new: v))
    }
    /// Sets the TOS byte (DSCP and ECN, RFC 2474 §3 and RFC 3168 §5); the checksum follows.
    @inlinable public func setTOS(_ v: UInt8) {
        let old = bytes.u16(Field.versionIHL)
        bytes[Field.tos] = v
        bytes.setU16(Field.checksum, InternetChecksum.update(headerChecksum, old: old, new: bytes.u16(Field.versionIHL)))
    }
    /// Decrements TTL (RFC 791 §3.2 / RFC 1812 §5.3.1); the checksum follows.
    @inlinable public func decrementTTL() {
        let old = bytes.u16(Field.ttl)
        bytes[Field.ttl] &-= 1
        bytes.setU16(Field.checksum, InternetChecksum.update(headerChecksum, old: old, new: bytes.u16(Field.ttl)))
    }
}
