/// IPv6 peeks, for routing or sharding an IPv6 packet before the engine validates it. The
/// extension-header chain is walked safely (`IPv6HeaderChain`) up to the bytes present.
extension HeaderPeek {
    /// The endpoints and flags of an IPv6 TCP packet (RFC 8200 §3-4, RFC 9293 §3.1) behind any
    /// extension headers; nil when the bytes are not IPv6 with TCP as the upper layer (a
    /// fragment, a malformed chain) or end before the TCP flags.
    public var ipv6TCP: (source: IPv6Endpoint, destination: IPv6Endpoint, flags: TCPFlags)? {
        guard bytes.count >= IPv6Packet.headerLength, ipVersion == 6,
              let chain = try? IPv6HeaderChain.walk(bytes, first: bytes[IPv6Packet.Field.nextHeader],
                                                    start: IPv6Packet.headerLength, end: bytes.count),
              chain.fragment == nil, chain.upperProtocol == IPv6HeaderChain.Next.tcp else { return nil }
        let t = chain.upperOffset
        guard bytes.count > t + TCPSegment.Field.flags else { return nil }
        return (IPv6Endpoint(IPv6Address(bytes, at: IPv6Packet.Field.source), bytes.u16(t + TCPSegment.Field.sourcePort)),
                IPv6Endpoint(IPv6Address(bytes, at: IPv6Packet.Field.destination), bytes.u16(t + TCPSegment.Field.destinationPort)),
                TCPFlags(rawValue: bytes[t + TCPSegment.Field.flags]))
    }

    /// The endpoints of the TCP segment an ICMPv6 message quotes (RFC 4443 §2.4 (c): the
    /// invoking packet's IPv6 header and extension headers, then its TCP header), nil when the
    /// bytes are not ICMPv6 quoting TCP or end before the quoted ports. Type and checksum
    /// unchecked.
    public var ipv6ICMPQuotedTCP: (source: IPv6Endpoint, destination: IPv6Endpoint)? {
        guard bytes.count >= IPv6Packet.headerLength, ipVersion == 6,
              let outer = try? IPv6HeaderChain.walk(bytes, first: bytes[IPv6Packet.Field.nextHeader],
                                                    start: IPv6Packet.headerLength, end: bytes.count),
              outer.fragment == nil, outer.upperProtocol == ICMPv6Message.protocolNumber else { return nil }
        let q = outer.upperOffset + ICMPv6Message.headerLength
        guard bytes.count >= q + IPv6Packet.headerLength, bytes[q] >> 4 == 6 else { return nil }
        let quote = UnsafeRawBufferPointer(rebasing: bytes[q...])
        guard let chain = try? IPv6HeaderChain.walk(quote, first: quote[IPv6Packet.Field.nextHeader], start: IPv6Packet.headerLength,
                                                    end: quote.count, pastEnd: .truncated, throughFirstFragment: true),
              chain.upperProtocol == IPv6HeaderChain.Next.tcp, (chain.fragment?.offset ?? 0) == 0,
              quote.count >= chain.upperOffset + 4 else { return nil }
        let t = chain.upperOffset
        return (IPv6Endpoint(IPv6Address(quote, at: IPv6Packet.Field.source), quote.u16(t)),
                IPv6Endpoint(IPv6Address(quote, at: IPv6Packet.Field.destination), quote.u16(t + 2)))
    }
}

extension HeaderPeek {
    /// A TCP packet's endpoints and flags in either family (`ipv4TCP`, `ipv6TCP`).
    public var tcpEndpoints: (source: IPEndpoint, destination: IPEndpoint, flags: TCPFlags)? {
        switch ipVersion {
        case 4: ipv4TCP.map { (IPEndpoint($0.source), IPEndpoint($0.destination), $0.flags) }
        case 6: ipv6TCP.map { (IPEndpoint($0.source), IPEndpoint($0.destination), $0.flags) }
        default: nil
        }
    }
}
