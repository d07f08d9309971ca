/// The address family of a packet or of one side of a flow, for what differs between them on
/// the wire: the fixed header a segment carries, the least MTU a link has. The seam code that
/// handles both families switches on (`IPAddress.family`, `TCPIPPacket.family`).
public enum IPFamily: Sendable, Hashable, CaseIterable {
    case ipv4, ipv6

    /// Bytes of the IP header the proxy's segments carry (no IPv4 options, no IPv6 extension
    /// headers: RFC 791 §3.1, RFC 8200 §3).
    @inlinable public var headerLength: Int {
        switch self {
        case .ipv4: IPv4Packet.minimumHeaderLength
        case .ipv6: IPv6Packet.headerLength
        }
    }
    /// The least MTU a link of the family has (RFC 791 §3.2: 68; RFC 8200 §5: 1280).
    @inlinable public var minimumMTU: Int {
        switch self {
        case .ipv4: 68
        case .ipv6: 1280
        }
    }
    /// The IP version nibble (RFC 791 §3.1, RFC 8200 §3).
    @inlinable public var version: UInt8 {
        switch self {
        case .ipv4: 4
        case .ipv6: 6
        }
    }
}

/// An address of either family.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Parses an IPv4 dotted quad or an IPv6 text form (without brackets); nil for anything else.
    public init?(_ text: some StringProtocol) {
        if let a = IPv4Address(text) {
            self = .v4(a)
        } else if let a = IPv6Address(text) {
            self = .v6(a)
        } else {
            return nil
        }
    }

    @inlinable public var family: IPFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }
    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}

/// A transport endpoint of either family: "10.1.0.2:80" or "[fd00::2]:80".
public struct IPEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    @inlinable public init(_ address: IPAddress, _ port: UInt16) { self.address = address; self.port = port }
    @inlinable public init(_ e: IPv4Endpoint) { self.init(.v4(e.address), e.port) }
    @inlinable public init(_ e: IPv6Endpoint) { self.init(.v6(e.address), e.port) }

    /// Parses "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6); nil for anything else.
    public init?(_ text: some StringProtocol) {
        if let e = IPv4Endpoint(text) {
            self.init(e)
        } else if let e = IPv6Endpoint(text) {
            self.init(e)
        } else {
            return nil
        }
    }

    @inlinable public var family: IPFamily { address.family }
    /// The endpoint when it is IPv4, else nil.
    @inlinable public var ipv4: IPv4Endpoint? {
        if case .v4(let a) = address { return IPv4Endpoint(a, port) }
        return nil
    }
    /// The endpoint when it is IPv6, else nil.
    @inlinable public var ipv6: IPv6Endpoint? {
        if case .v6(let a) = address { return IPv6Endpoint(a, port) }
        return nil
    }
    public var description: String {
        switch address {
        case .v4(let a): "\(a):\(port)"
        case .v6(let a): "[\(a)]:\(port)"
        }
    }
}
