/// Partial checksums (checksum offload: Linux CHECKSUM_PARTIAL, virtio-net NEEDS_CSUM): the
/// TCP checksum field holds only the folded pseudo-header sum (RFC 9293 §3.1), not
/// complemented; whoever finishes it (the kernel, a NIC) adds the segment's bytes from the
/// TCP header on and stores the complement. A rewrite of such a packet therefore leaves the
/// field alone while it changes header or payload bytes, and sets it anew from the final
/// addresses and length (`setPartialChecksum`).
extension TCPSegment {
    /// Stores the folded pseudo-header sum, as a partial checksum.
    @inlinable public func setPartialChecksum(pseudoHeaderSum: UInt32) {
        var s = pseudoHeaderSum
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        bytes.setU16(16, UInt16(s))
    }
}

extension TCPIPv4Packet {
    /// Recomputes a partial TCP checksum for the packet's current addresses and length.
    @inlinable public func refreshPartialChecksum() {
        tcp.setPartialChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: tcp.bytes.count))
    }

    /// Checks only the IP header checksum (for packets whose TCP checksum is partial).
    @inlinable public func verifyHeaderChecksumOnly() -> WireError? {
        ip.verifyHeaderChecksum ? nil : .badIPChecksum
    }
}

extension TCPIPv6Packet {
    /// Recomputes a partial TCP checksum for the packet's current addresses and length (the
    /// IPv6 pseudo-header, RFC 8200 §8.1).
    @inlinable public func refreshPartialChecksum() {
        tcp.setPartialChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: tcp.bytes.count))
    }
}
