/// Header fields read straight from a packet's bytes before (or instead of) validating it, for
/// code outside the engine that only needs to route or size a packet: the shard a packet
/// belongs to, the length its IP header declares, link padding to trim.
///
/// Invariant: every accessor returns nil when the bytes are too short or not the protocol it
/// reads; none traps, whatever the bytes. Offsets are the `IPv4Packet`/`TCPSegment` ones.
public struct HeaderPeek {
    public let bytes: UnsafeRawBufferPointer

    @inlinable public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The IP version nibble (4 or 6 for IP; anything else is not IP), nil when empty.
    @inlinable public var ipVersion: UInt8? { bytes.first.map { $0 >> 4 } }

    /// IPv4's total length field (RFC 791 §3.1), nil when not IPv4 or shorter than the field.
    @inlinable public var ipv4TotalLength: Int? {
        guard ipVersion == 4, bytes.count >= IPv4Packet.Field.totalLength + 2 else { return nil }
        return Int(bytes.u16(IPv4Packet.Field.totalLength))
    }

    /// The length the IP header declares for the whole packet: IPv4's total length, IPv6's
    /// 40-byte header plus its payload length (RFC 8200 §3); nil when it does not say.
    @inlinable public var declaredLength: Int? {
        switch ipVersion {
        case 4: return ipv4TotalLength
        case 6 where bytes.count >= 6: return IPv6Packet.headerLength + Int(bytes.u16(4))
        default: return nil
        }
    }

    /// True for an IPv4 fragment, first or later (MF set or a non-zero offset; RFC 791 §3.1).
    @inlinable public var isIPv4Fragment: Bool {
        guard bytes.count >= IPv4Packet.minimumHeaderLength, ipVersion == 4 else { return false }
        return bytes.u16(IPv4Packet.Field.flagsFragment) & 0x3FFF != 0
    }

    /// The addresses, ports and flags of an IPv4 TCP packet (RFC 791 §3.1, RFC 9293 §3.1),
    /// nil when the bytes are not IPv4 with protocol 6, or end before the TCP flags, or are a
    /// fragment (a later one's "ports" would be payload bytes).
    @inlinable public var ipv4TCP: (source: IPv4Endpoint, destination: IPv4Endpoint, flags: TCPFlags)? {
        guard bytes.count >= IPv4Packet.minimumHeaderLength, ipVersion == 4,
              bytes[IPv4Packet.Field.proto] == 6,
              bytes.u16(IPv4Packet.Field.flagsFragment) & 0x3FFF == 0 else { return nil }
        let ihl = Int(bytes[IPv4Packet.Field.versionIHL] & 0x0F) * 4
        guard ihl >= IPv4Packet.minimumHeaderLength, bytes.count >= ihl + TCPSegment.Field.flags + 1 else { return nil }
        let source = IPv4Endpoint(IPv4Address(bytes.u32(IPv4Packet.Field.source)), bytes.u16(ihl + TCPSegment.Field.sourcePort))
        let destination = IPv4Endpoint(IPv4Address(bytes.u32(IPv4Packet.Field.destination)),
                                       bytes.u16(ihl + TCPSegment.Field.destinationPort))
        return (source, destination, TCPFlags(rawValue: bytes[ihl + TCPSegment.Field.flags]))
    }

    /// The endpoints of the TCP segment an ICMPv4 message quotes (RFC 792: outer IPv4 header,
    /// 8 bytes of ICMP, the quoted IPv4 header and at least 8 bytes of TCP), nil when the bytes
    /// are not ICMPv4 quoting TCP or end before the quoted ports. Type and checksums unchecked.
    public var ipv4ICMPQuotedTCP: (source: IPv4Endpoint, destination: IPv4Endpoint)? {
        guard isICMPv4 else { return nil }
        let outer = Int(bytes[IPv4Packet.Field.versionIHL] & 0x0F) * 4
        guard outer >= IPv4Packet.minimumHeaderLength else { return nil }
        let q = outer + ICMPv4Message.headerLength
        guard bytes.count >= q + IPv4Packet.minimumHeaderLength, bytes[q] >> 4 == 4,
              bytes[q + IPv4Packet.Field.proto] == 6 else { return nil }
        let inner = Int(bytes[q] & 0x0F) * 4
        guard inner >= IPv4Packet.minimumHeaderLength, bytes.count >= q + inner + 4 else { return nil }
        let source = IPv4Endpoint(IPv4Address(bytes.u32(q + IPv4Packet.Field.source)), bytes.u16(q + inner))
        let destination = IPv4Endpoint(IPv4Address(bytes.u32(q + IPv4Packet.Field.destination)), bytes.u16(q + inner + 2))
        return (source, destination)
    }

    /// True for an IPv4 datagram carrying ICMP (protocol 1, RFC 792).
    @inlinable public var isICMPv4: Bool {
        bytes.count >= IPv4Packet.minimumHeaderLength && ipVersion == 4 && bytes[IPv4Packet.Field.proto] == 1
    }
}
