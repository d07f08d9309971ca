/// The invoking packet an ICMPv6 error quotes, when it was a TCP segment (RFC 4443 §2.4 (c):
/// as much of it as fits; at least the IPv6 header, its extension headers and 8 bytes of TCP:
/// ports and sequence number). The IPv6 counterpart of `QuotedTCPv4`.
///
/// The quote may be cut short, so its payload length (the original packet's) is not checked
/// against the bytes present; the TCP fields past the first 8 bytes (`ack`, the checksum)
/// exist only when quoted (`hasAck`, `hasChecksum`). A quoted first fragment (offset 0) is
/// walked through to its TCP header; a later fragment quotes none.
///
/// Invariants after `init(validating:)`: version 6, the quoted extension headers walked inside
/// the bytes, upper layer TCP, `tcpOffset + 8 <= bytes.count`. Setters keep the quoted TCP
/// checksum right when it was quoted (RFC 1624, incrementally); the enclosing ICMPv6 checksum
/// is the caller's (`ICMPv6Message.fillChecksum`).
public struct QuotedTCPv6 {
    public let bytes: UnsafeMutableRawBufferPointer
    /// Where the quoted TCP header starts (40 plus the quoted extension headers).
    public let tcpOffset: Int

    /// The least a quote must hold: an IPv6 header and 8 bytes of TCP.
    public static let minimumLength = IPv6Packet.headerLength + 8

    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(ICMPWireError) {
        guard bytes.count >= Self.minimumLength else { throw .quotedTruncated }
        guard bytes[0] >> 4 == 6 else { throw .quotedMalformed }
        let chain: IPv6HeaderChain
        do {
            chain = try IPv6HeaderChain.walk(UnsafeRawBufferPointer(bytes), first: bytes[IPv6Packet.Field.nextHeader],
                                             start: IPv6Packet.headerLength, end: bytes.count,
                                             pastEnd: .truncated, throughFirstFragment: true)
        } catch {
            switch error {
            case .truncated: throw .quotedTruncated
            case .fragment: throw .quotedNotTCP
            default: throw .quotedMalformed
            }
        }
        guard chain.upperProtocol == IPv6HeaderChain.Next.tcp, (chain.fragment?.offset ?? 0) == 0 else { throw .quotedNotTCP }
        guard chain.upperOffset + 8 <= bytes.count else { throw .quotedTruncated }
        self.bytes = bytes
        self.tcpOffset = chain.upperOffset
    }

    private var tcp: QuotedTCPHeader { QuotedTCPHeader(bytes: bytes, offset: tcpOffset) }

    public var source: IPv6Endpoint { IPv6Endpoint(IPv6Address(bytes, at: IPv6Packet.Field.source), tcp.sourcePort) }
    public var destination: IPv6Endpoint {
        IPv6Endpoint(IPv6Address(bytes, at: IPv6Packet.Field.destination), tcp.destinationPort)
    }
    public var seq: SeqNumber { tcp.seq }
    /// The original packet's payload length (not the quote's).
    public var originalPayloadLength: Int { Int(bytes.u16(IPv6Packet.Field.payloadLength)) }
    /// The original packet's flow label (RFC 6437).
    public var flowLabel: UInt32 { bytes.u32(IPv6Packet.Field.versionClassFlow) & 0x000F_FFFF }
    public var hasAck: Bool { tcp.hasAck }
    public var ack: SeqNumber? { tcp.ack }
    /// The TCP flags, when the quote reaches them.
    public var flags: TCPFlags? { tcp.flags }
    public var hasChecksum: Bool { tcp.hasChecksum }

    // MARK: Setters

    public func setSource(_ e: IPv6Endpoint) {
        setAddress(at: IPv6Packet.Field.source, e.address)
        tcp.setSourcePort(e.port)
    }
    public func setDestination(_ e: IPv6Endpoint) {
        setAddress(at: IPv6Packet.Field.destination, e.address)
        tcp.setDestinationPort(e.port)
    }
    public func setSeq(_ s: SeqNumber) { tcp.setSeq(s) }
    /// Sets the ack when it was quoted; nothing otherwise.
    public func setAck(_ s: SeqNumber) { tcp.setAck(s) }

    private func setAddress(at offset: Int, _ a: IPv6Address) {
        let old = IPv6Address(bytes, at: offset)
        guard old != a else { return }
        bytes.setU64(offset, a.high)
        bytes.setU64(offset + 8, a.low)
        // The address is part of TCP's pseudo-header (RFC 8200 §8.1).
        tcp.fixChecksum { InternetChecksum.update($0, old: old, new: a) }
    }
}
