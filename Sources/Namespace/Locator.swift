#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a device can be reached now (its care-of address, SMP draft §6.1.2): an IPv4 or IPv6
/// address literal, kept in canonical text form (`2001:db8::1`, never `2001:DB8:0::1`) so that
/// equal addresses compare equal and the reverse lookup finds them, and the port of the device's
/// agent when it runs one.
public struct Locator: Codable, Hashable, Sendable {
    /// The canonical address literal.
    public private(set) var address: String
    /// The TCP port of the device's agent (TSMPA), when it listens.
    public var agentPort: UInt16?

    /// Validates `address` as an IPv4 (dotted quad) or IPv6 literal (no brackets, no zone) and
    /// `agentPort` as a real port (not 0).
    public init(address: String, agentPort: UInt16? = nil) throws(NamespaceError) {
        guard let canonical = Self.canonicalAddress(address) else {
            throw .invalid("address \"\(address)\": not an IPv4 or IPv6 address literal")
        }
        if agentPort == 0 { throw .invalid("agent port 0: expected 1-65535") }
        self.address = canonical
        self.agentPort = agentPort
    }

    private enum CodingKeys: String, CodingKey { case address, agentPort }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let address = try container.decode(String.self, forKey: .address)
        let port = try container.decodeIfPresent(UInt16.self, forKey: .agentPort)
        do { self = try Locator(address: address, agentPort: port) } catch {
            throw DecodingError.dataCorruptedError(forKey: .address, in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(address, forKey: .address)
        try container.encodeIfPresent(agentPort, forKey: .agentPort)
    }

    /// The canonical text of an IPv4 or IPv6 literal (inet_pton then inet_ntop), or nil. An
    /// IPv4-mapped IPv6 address (`::ffff:10.1.0.2`, RFC 4291 §2.5.5.2) is the IPv4 address it
    /// stands for (`10.1.0.2`): it is how a dual-stack listener sees an IPv4 peer, and the
    /// proxy matches flows against IPv4 addresses.
    public static func canonicalAddress(_ text: String) -> String? {
        guard let bytes = parse(text) else { return nil }
        return bytes.withUnsafeBytes { Self.text(family: bytes.count == 4 ? AF_INET : AF_INET6, $0) }
    }

    /// The address's bytes in network order (4 or 16; a mapped IPv4 address as its 4), or nil
    /// when `text` is no IPv4 or IPv6 literal.
    public static func addressBytes(_ text: String) -> [UInt8]? { parse(text) }

    private static let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

    private static func parse(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return Array(bytes[0..<12]) == mappedPrefix ? Array(bytes[12..<16]) : bytes
        }
        return nil
    }

    /// inet_ntop of the address bytes.
    private static func text(family: Int32, _ address: UnsafeRawBufferPointer) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let count = buffer.count
        return buffer.withUnsafeMutableBufferPointer { out -> String? in
            guard let base = out.baseAddress, inet_ntop(family, address.baseAddress, base, socklen_t(count)) != nil else { return nil }
            return String(cString: base)
        }
    }
}
