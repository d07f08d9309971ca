/// An IPv6 packet carrying one whole TCP segment (RFC 8200, RFC 9293): the IPv6 counterpart of
/// `TCPIPv4Packet`, the unit the engine will rewrite for IPv6 flows.
///
/// After `init(validating:)`: a valid IPv6 header and extension-header chain (`IPv6Packet`: no
/// fragment, no jumbogram), the upper layer is TCP, no routing header with segments left (its
/// checksum would cover another destination, RFC 8200 §8.1), a valid TCP header inside the
/// payload length. The TCP checksum is not checked here (see `verifyChecksums`).
public struct TCPIPv6Packet {
    public let ip: IPv6Packet
    public let tcp: TCPSegment

    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        let ip = try IPv6Packet(validating: bytes)
        guard ip.transportProtocol == IPv6HeaderChain.Next.tcp else { throw .notTCP }
        guard ip.routingSegmentsLeft == 0 else { throw .routingHeaderInTransit }
        self.ip = ip
        self.tcp = try TCPSegment(validating: ip.payload)
    }

    /// Unchecked: for builders that have just written the packet.
    @usableFromInline init(ip: IPv6Packet, tcp: TCPSegment) { self.ip = ip; self.tcp = tcp }

    /// Bytes of the packet (up to `totalLength`).
    @inlinable public var datagram: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: ip.bytes[0..<ip.totalLength])
    }
    @inlinable public var source: IPv6Endpoint { IPv6Endpoint(ip.source, tcp.sourcePort) }
    @inlinable public var destination: IPv6Endpoint { IPv6Endpoint(ip.destination, tcp.destinationPort) }

    /// Checks the TCP checksum over the IPv6 pseudo-header (RFC 8200 §8.1, RFC 9293 §3.1);
    /// IPv6 has no header checksum.
    @inlinable public func verifyChecksums() -> WireError? {
        tcp.verifyChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: tcp.bytes.count)) ? nil : .badTCPChecksum
    }

    /// Rewrites the source endpoint, keeping the TCP checksum (NAT66, RFC 1624: the address is
    /// in the pseudo-header, the port in the segment).
    @inlinable public func setSource(_ e: IPv6Endpoint) {
        let old = ip.source
        if old != e.address {
            ip.setSource(e.address)
            tcp.adjustChecksumForAddress(old: old, new: e.address)
        }
        if tcp.sourcePort != e.port { tcp.setSourcePort(e.port) }
    }
    @inlinable public func setDestination(_ e: IPv6Endpoint) {
        let old = ip.destination
        if old != e.address {
            ip.setDestination(e.address)
            tcp.adjustChecksumForAddress(old: old, new: e.address)
        }
        if tcp.destinationPort != e.port { tcp.setDestinationPort(e.port) }
    }
}
