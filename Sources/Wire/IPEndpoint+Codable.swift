/// Addresses and endpoints of either family as JSON: an address is its text form, an endpoint
/// `{"address": TEXT, "port": N}`, the shape `IPv4Endpoint` and `IPv6Endpoint` already have,
/// so an IPv4 flow reads the same whichever type wrote it.
extension IPAddress: Codable, Comparable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "not an IPv4 or IPv6 address: \(text)"))
        }
        self = a
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
    /// IPv4 before IPv6, then by value.
    @inlinable public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): x < y
        case (.v6(let x), .v6(let y)): x < y
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }
    /// The address when it is IPv4, else nil.
    @inlinable public var ipv4: IPv4Address? {
        if case .v4(let a) = self { return a }
        return nil
    }
    /// The address when it is IPv6, else nil.
    @inlinable public var ipv6: IPv6Address? {
        if case .v6(let a) = self { return a }
        return nil
    }
}

extension IPEndpoint: Codable {
    private enum Key: String, CodingKey { case address, port }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        self.init(try c.decode(IPAddress.self, forKey: .address), try c.decode(UInt16.self, forKey: .port))
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(address, forKey: .address)
        try c.encode(port, forKey: .port)
    }
}

extension IPEndpoint {
    /// An IPv4 endpoint.
    @inlinable public init(_ address: IPv4Address, _ port: UInt16) { self.init(.v4(address), port) }
    /// An IPv6 endpoint.
    @inlinable public init(_ address: IPv6Address, _ port: UInt16) { self.init(.v6(address), port) }
}

/// A family as JSON: "ipv4" or "ipv6".
extension IPFamily: Codable {
    public init(from decoder: any Decoder) throws {
        switch try decoder.singleValueContainer().decode(String.self) {
        case "ipv4": self = .ipv4
        case "ipv6": self = .ipv6
        case let other:
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an address family: \(other)"))
        }
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(self == .ipv4 ? "ipv4" : "ipv6")
    }
}

extension IPv6Address {
    /// The address unless it is `::` (the unspecified address, RFC 4291 §2.5.2).
    @inlinable public var nonZero: IPv6Address? { high == 0 && low == 0 ? nil : self }
}
