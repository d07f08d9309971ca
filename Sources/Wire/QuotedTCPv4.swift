/// The original datagram an ICMPv4 error quotes, when it was a TCP segment (RFC 792: its IPv4
/// header and at least the first 8 bytes of its data, i.e. ports and sequence number).
///
/// The quote is usually cut short, so its IPv4 total length (the original datagram's) is
/// larger than the bytes present and is not checked; the TCP fields past the first 8 bytes
/// (`ack`, the checksum) exist only when quoted (`hasAck`, `hasChecksum`).
///
/// Invariants after `init(validating:)`: version 4, `20 <= headerLength`, `headerLength + 8 <=
/// bytes.count`, protocol 6, fragment offset 0. Setters keep the quoted IP header checksum
/// right, and the quoted TCP checksum when it was quoted (RFC 1624, incrementally: the quoted
/// payload is partial, so it could not be summed again); the enclosing ICMP checksum is the
/// caller's (`ICMPv4Message.fillChecksum`).
public struct QuotedTCPv4 {
    public let bytes: UnsafeMutableRawBufferPointer
    /// The quoted IPv4 header's length.
    public let headerLength: Int

    /// The least a quote must hold: an IPv4 header without options and 8 bytes of TCP.
    public static let minimumLength = IPv4Packet.minimumHeaderLength + 8

    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(ICMPWireError) {
        guard bytes.count >= Self.minimumLength else { throw .quotedTruncated }
        guard bytes[0] >> 4 == 4 else { throw .quotedMalformed }
        let ihl = Int(bytes[0] & 0x0F) * 4
        guard ihl >= IPv4Packet.minimumHeaderLength else { throw .quotedMalformed }
        guard ihl + 8 <= bytes.count else { throw .quotedTruncated }
        guard bytes[IPv4Packet.Field.proto] == 6 else { throw .quotedNotTCP }
        // A later fragment quotes no TCP header (RFC 791 §3.2).
        guard bytes.u16(IPv4Packet.Field.flagsFragment) & 0x1FFF == 0 else { throw .quotedNotTCP }
        self.bytes = bytes
        self.headerLength = ihl
    }

    private var tcp: QuotedTCPHeader { QuotedTCPHeader(bytes: bytes, offset: headerLength) }

    public var source: IPv4Endpoint { IPv4Endpoint(IPv4Address(bytes.u32(IPv4Packet.Field.source)), tcp.sourcePort) }
    public var destination: IPv4Endpoint {
        IPv4Endpoint(IPv4Address(bytes.u32(IPv4Packet.Field.destination)), tcp.destinationPort)
    }
    public var seq: SeqNumber { tcp.seq }
    /// The original datagram's total length (not the quote's).
    public var originalTotalLength: Int { Int(bytes.u16(IPv4Packet.Field.totalLength)) }
    public var hasAck: Bool { tcp.hasAck }
    public var ack: SeqNumber? { tcp.ack }
    /// The TCP flags, when the quote reaches them.
    public var flags: TCPFlags? { tcp.flags }
    public var hasChecksum: Bool { tcp.hasChecksum }

    // MARK: Setters

    public func setSource(_ e: IPv4Endpoint) {
        setAddress(at: IPv4Packet.Field.source, e.address)
        tcp.setSourcePort(e.port)
    }
    public func setDestination(_ e: IPv4Endpoint) {
        setAddress(at: IPv4Packet.Field.destination, e.address)
        tcp.setDestinationPort(e.port)
    }
    public func setSeq(_ s: SeqNumber) { tcp.setSeq(s) }
    /// Sets the ack when it was quoted; nothing otherwise.
    public func setAck(_ s: SeqNumber) { tcp.setAck(s) }

    private func setAddress(at offset: Int, _ a: IPv4Address) {
        let old = bytes.u32(offset)
        guard old != a.value else { return }
        bytes.setU32(offset, a.value)
        let ipSum = bytes.u16(IPv4Packet.Field.checksum)
        bytes.setU16(IPv4Packet.Field.checksum, InternetChecksum.update(ipSum, old: old, new: a.value))
        // The address is part of TCP's pseudo-header (RFC 9293 §3.1).
        tcp.fixChecksum { InternetChecksum.update($0, old: old, new: a.value) }
    }
}
