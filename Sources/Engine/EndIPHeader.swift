import Wire

/// How an end's own packets look at the IP layer when the engine reads them: TTL and DF. The
/// proxy's packets in that end's name carry the same, so a capture at the other end shows one
/// hop count and one fragmentation policy per connection, not a second sender (the kernel
/// then forwards both alike, decrementing the TTL once more). Learned from the end's SYN or
/// SYN-ACK, once per connection, not per packet.
///
/// A datagram without DF needs an identification of its own (RFC 6864 §4.2: non-atomic
/// datagrams); an atomic one's is not looked at (RFC 6864 §4.1), and stays 0.
struct EndIPHeader: Sendable, Equatable {
    var ttl: UInt8 = 64
    var dontFragment = true

    init(ttl: UInt8 = 64, dontFragment: Bool = true) {
        self.ttl = ttl
        self.dontFragment = dontFragment
    }
    /// IPv6's hop limit as the TTL; IPv6 is never fragmented on its way (RFC 8200 §5).
    init(_ packet: TCPIPPacket) {
        ttl = packet.ttl
        dontFragment = packet.dontFragment
    }
}

extension TCPPacketSpec {
    /// This packet as the end whose packets look like `end` would send it.
    func imitating(_ end: EndIPHeader) -> TCPPacketSpec {
        var spec = self
        spec.ttl = end.ttl
        spec.dontFragment = end.dontFragment
        return spec
    }
}
