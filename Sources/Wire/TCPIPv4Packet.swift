/// An IPv4 datagram carrying one whole TCP segment: the unit the splice engine rewrites.
///
/// After `init(validating:)`: a valid IPv4 header, protocol 6, not a fragment, a valid TCP
/// header inside `totalLength`. Checksums are not checked here (see `verifyChecksums`), so a
/// caller can choose to count bad ones instead of trusting offloaded ones.
public struct TCPIPv4Packet {
    public let ip: IPv4Packet
    public let tcp: TCPSegment

    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        let ip = try IPv4Packet(validating: bytes)
        guard ip.protocolNumber == 6 else { throw .notTCP }
        guard !ip.isFragment else { throw .fragment }
        self.ip = ip
        self.tcp = try TCPSegment(validating: ip.payload)
    }

    /// Bytes of the datagram (up to `totalLength`).
    @inlinable public var datagram: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: ip.bytes[0..<ip.totalLength])
    }
    @inlinable public var source: IPv4Endpoint { IPv4Endpoint(ip.source, tcp.sourcePort) }
    @inlinable public var destination: IPv4Endpoint { IPv4Endpoint(ip.destination, tcp.destinationPort) }

    /// Checks both the IP header checksum and the TCP checksum (RFC 9293 §3.1).
    @inlinable public func verifyChecksums() -> WireError? {
        guard ip.verifyHeaderChecksum else { return .badIPChecksum }
        guard tcp.verifyChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: tcp.bytes.count)) else {
            return .badTCPChecksum
        }
        return nil
    }

    /// Rewrites the source endpoint, keeping IP and TCP checksums (NAT, RFC 1624).
    @inlinable public func setSource(_ e: IPv4Endpoint) {
        let old = ip.source
        if old != e.address {
            ip.setSource(e.address)
            tcp.adjustChecksumForAddress(old: old, new: e.address)
        }
        if tcp.sourcePort != e.port { tcp.setSourcePort(e.port) }
    }
    @inlinable public func setDestination(_ e: IPv4Endpoint) {
        let old = ip.destination
        if old != e.address {
            ip.setDestination(e.address)
            tcp.adjustChecksumForAddress(old: old, new: e.address)
        }
        if tcp.destinationPort != e.port { tcp.setDestinationPort(e.port) }
    }
}
