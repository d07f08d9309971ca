/// An IPv4 address (RFC 791 §3.1) held in host order.
public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var value: UInt32
    @inlinable public init(_ value: UInt32) { self.value = value }
    @inlinable public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }
    /// Parses dotted-quad text ("10.1.0.2"); nil for anything else. An octet with a leading
    /// zero ("010") is refused, as inet_pton(3) does: inet_aton(3) and iproute2 read it as
    /// octal, so its meaning is ambiguous (RFC 6943 §3.1.1).
    @inlinable public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                  p.count == 1 || p.first != "0",
                  let octet = UInt8(p) else { return nil }
            v = v << 8 | UInt32(octet)
        }
        value = v
    }
    @inlinable public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value))
    }
    public var description: String {
        let o = octets
        return "\(o.0).\(o.1).\(o.2).\(o.3)"
    }
    @inlinable public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPv4Address(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an IPv4 address: \(text)"))
        }
        self = a
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A transport endpoint: address and port.
public struct IPv4Endpoint: Hashable, Sendable, CustomStringConvertible, Codable {
    public var address: IPv4Address
    public var port: UInt16
    @inlinable public init(_ address: IPv4Address, _ port: UInt16) { self.address = address; self.port = port }
    /// Parses "ADDR:PORT"; the port is 1 to 5 ASCII digits (no sign: `UInt16("+80")` would
    /// accept one).
    @inlinable public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let portText = text[text.index(after: colon)...]
        guard let a = IPv4Address(text[text.startIndex..<colon]),
              !portText.isEmpty, portText.count <= 5,
              portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let p = UInt16(portText) else { return nil }
        self.init(a, p)
    }
    public var description: String { "\(address):\(port)" }
}
