/// What the splice reads and rewrites of a TCP packet's IP header, in either family: the
/// fields both have under one name (TOS is IPv6's traffic class, TTL its hop limit, RFC 8200
/// §3), and the ones only IPv4 has answered as IPv6 behaves (no router fragments an IPv6
/// packet: RFC 8200 §5, so it is always "don't fragment").
extension TCPIPPacket {
    /// Rewrites the source address and port, the checksums updated incrementally (RFC 1624).
    /// False, changing nothing, when `e` is of the other family: a packet cannot change family
    /// in place.
    @inlinable @discardableResult public func setSource(_ e: IPEndpoint) -> Bool {
        switch (self, e.address) {
        case (.v4(let p), .v4(let a)): p.setSource(IPv4Endpoint(a, e.port)); return true
        case (.v6(let p), .v6(let a)): p.setSource(IPv6Endpoint(a, e.port)); return true
        default: return false
        }
    }
    /// Rewrites the destination address and port; false, changing nothing, across families.
    @inlinable @discardableResult public func setDestination(_ e: IPEndpoint) -> Bool {
        switch (self, e.address) {
        case (.v4(let p), .v4(let a)): p.setDestination(IPv4Endpoint(a, e.port)); return true
        case (.v6(let p), .v6(let a)): p.setDestination(IPv6Endpoint(a, e.port)); return true
        default: return false
        }
    }
    /// DSCP and ECN (RFC 2474, RFC 3168 §5): IPv4's TOS byte, IPv6's traffic class.
    @inlinable public var tos: UInt8 {
        switch self {
        case .v4(let p): p.ip.tos
        case .v6(let p): p.ip.trafficClass
        }
    }
    /// Sets the TOS byte or traffic class (IPv4's header checksum updated).
    @inlinable public func setTOS(_ v: UInt8) {
        switch self {
        case .v4(let p): p.ip.setTOS(v)
        case .v6(let p): p.ip.setTrafficClass(v)
        }
    }
    /// IPv4's TTL, IPv6's hop limit.
    @inlinable public var ttl: UInt8 {
        switch self {
        case .v4(let p): p.ip.ttl
        case .v6(let p): p.ip.hopLimit
        }
    }
    /// IPv4's DF bit; always true for IPv6, which routers never fragment.
    @inlinable public var dontFragment: Bool {
        switch self {
        case .v4(let p): p.ip.dontFragment
        case .v6: true
        }
    }
    /// IPv4's identification; 0 for IPv6 (its identification is in a fragment header, and the
    /// engine sees no fragments).
    @inlinable public var identification: UInt16 {
        switch self {
        case .v4(let p): p.ip.identification
        case .v6: 0
        }
    }
    /// IPv6's flow label (RFC 6437); 0 for IPv4.
    @inlinable public var flowLabel: UInt32 {
        switch self {
        case .v4: 0
        case .v6(let p): p.ip.flowLabel
        }
    }
}
