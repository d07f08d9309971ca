/// A TCP packet of either family: the seam family-neutral code switches on. `init(validating:)`
/// dispatches on the version nibble; the accessors and rewrites below are the ones both views
/// share, so code that needs no family-specific field need not switch at all.
public enum TCPIPPacket {
    case v4(TCPIPv4Packet)
    case v6(TCPIPv6Packet)

    /// Validates `bytes` as TCP over IPv4 or IPv6 by their version nibble (RFC 791 §3.1,
    /// RFC 8200 §3); `.badVersion` for any other, `.truncated` when empty.
    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let first = bytes.first else { throw .truncated }
        switch first >> 4 {
        case 4: self = .v4(try TCPIPv4Packet(validating: bytes))
        case 6: self = .v6(try TCPIPv6Packet(validating: bytes))
        default: throw .badVersion
        }
    }

    @inlinable public var family: IPFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }
    @inlinable public var tcp: TCPSegment {
        switch self {
        case .v4(let p): p.tcp
        case .v6(let p): p.tcp
        }
    }
    /// The IP header's length with IPv4 options or IPv6 extension headers: where TCP starts.
    @inlinable public var ipHeaderLength: Int {
        switch self {
        case .v4(let p): p.ip.headerLength
        case .v6(let p): p.ip.transportOffset
        }
    }
    @inlinable public var datagram: UnsafeMutableRawBufferPointer {
        switch self {
        case .v4(let p): p.datagram
        case .v6(let p): p.datagram
        }
    }
    @inlinable public var source: IPEndpoint {
        switch self {
        case .v4(let p): IPEndpoint(p.source)
        case .v6(let p): IPEndpoint(p.source)
        }
    }
    @inlinable public var destination: IPEndpoint {
        switch self {
        case .v4(let p): IPEndpoint(p.destination)
        case .v6(let p): IPEndpoint(p.destination)
        }
    }
    /// The IP header checksum (IPv4 only) and the TCP checksum over the family's pseudo-header.
    @inlinable public func verifyChecksums() -> WireError? {
        switch self {
        case .v4(let p): p.verifyChecksums()
        case .v6(let p): p.verifyChecksums()
        }
    }
    /// Only what is not offloaded: IPv4's header checksum; nothing for IPv6 (it has none).
    @inlinable public func verifyHeaderChecksumOnly() -> WireError? {
        switch self {
        case .v4(let p): p.verifyHeaderChecksumOnly()
        case .v6: nil
        }
    }
    /// Sets a partial TCP checksum from the current addresses and length (`PartialChecksum`).
    @inlinable public func refreshPartialChecksum() {
        switch self {
        case .v4(let p): p.refreshPartialChecksum()
        case .v6(let p): p.refreshPartialChecksum()
        }
    }
}
