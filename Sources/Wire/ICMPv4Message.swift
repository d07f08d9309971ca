/// ICMPv4 error messages about TCP segments (RFC 792): the view the proxy reads them through
/// and rewrites them in, so that an error about a packet the proxy sent on a flow's behalf
/// (a router's "fragmentation needed", RFC 1191; a server's "port unreachable") reaches the end
/// that sent the original bytes, with the quoted header as that end knows it (RFC 5508 §4.2).
///
/// Layout (RFC 792, "Destination Unreachable" / "Time Exceeded"): an IPv4 header, then
/// type (1), code (1), checksum (2), 4 bytes that are unused except for "fragmentation needed"
/// where the low 16 bits are the next-hop MTU (RFC 1191 §4), then the original datagram's IPv4
/// header and at least its first 8 bytes (RFC 792; RFC 1812 §4.3.2.3 lets routers quote more).
///
/// Invariants after `init(validating:)`: the outer header is valid IPv4 (`IPv4Packet`), protocol
/// 1, not a fragment; the ICMP message holds its 8-byte header; every accessor stays inside the
/// datagram. The quoted datagram is checked separately (`quotedTCP`): bad bytes there are an
/// `ICMPWireError`, never a trap.
public struct ICMPv4Message {
    public let ip: IPv4Packet
    /// The ICMP message: from its type byte to the datagram's total length.
    public let message: UnsafeMutableRawBufferPointer

    @usableFromInline enum Field {
        @usableFromInline static let type = 0, code = 1, checksum = 2, nextHopMTU = 6, quoted = 8
    }
    public static let headerLength = 8
    public static let protocolNumber: UInt8 = 1

    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(ICMPWireError) {
        let ip: IPv4Packet
        do { ip = try IPv4Packet(validating: bytes) } catch { throw .outer(error) }
        guard ip.protocolNumber == Self.protocolNumber else { throw .notICMP }
        guard !ip.isFragment else { throw .fragment }
        let message = ip.payload
        guard message.count >= Self.headerLength else { throw .truncated }
        self.ip = ip
        self.message = message
    }

    public var type: UInt8 { message[Field.type] }
    public var code: UInt8 { message[Field.code] }
    public var checksum: UInt16 { message.u16(Field.checksum) }
    /// What kind of error this is, nil for a query (echo, timestamp...) or a type the proxy
    /// does not translate.
    public var kind: ICMPv4ErrorKind? { ICMPv4ErrorKind(type: type, code: code) }

    /// The next-hop MTU of a "fragmentation needed and DF set" (RFC 1191 §4: the low-order 16
    /// bits of the second word); 0 from routers older than RFC 1191. Nil for other messages.
    public var nextHopMTU: UInt16? {
        kind == .fragmentationNeeded ? message.u16(Field.nextHopMTU) : nil
    }

    /// The bytes after the 8-byte ICMP header: the quoted original datagram.
    public var quotedBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: message[Field.quoted...])
    }

    /// The quoted datagram as a TCP segment's header, when it is one (RFC 792: its IP header and
    /// at least 8 bytes of TCP: ports and sequence number).
    public func quotedTCP() throws(ICMPWireError) -> QuotedTCPv4 {
        try QuotedTCPv4(validating: quotedBytes)
    }

    /// True when the ICMP checksum (RFC 792: over the whole message) is right.
    public var verifyChecksum: Bool {
        InternetChecksum.sum(UnsafeRawBufferPointer(message)) == 0xFFFF
    }

    /// Recomputes the ICMP checksum over the whole message (after the quoted header changed:
    /// error messages are at most 576 bytes, RFC 1812 §4.3.2.3, so summing again is cheap).
    public func fillChecksum() {
        message.setU16(Field.checksum, 0)
        message.setU16(Field.checksum, InternetChecksum.checksum(UnsafeRawBufferPointer(message)))
    }

    /// Sets the next-hop MTU of a "fragmentation needed" (no checksum update: call `fillChecksum`).
    public func setNextHopMTU(_ mtu: UInt16) {
        guard kind == .fragmentationNeeded else { return }
        message.setU16(Field.nextHopMTU, mtu)
    }
}

/// The ICMPv4 errors about a TCP segment the proxy translates for managed flows (RFC 792),
/// named for what the sender's TCP does with them (RFC 1122 §4.2.3.9, RFC 5927 §5).
public enum ICMPv4ErrorKind: Equatable, Sendable {
    /// Type 3 code 4 (RFC 792, RFC 1191 §4): a router could not forward a DF datagram; its
    /// next-hop MTU says how big one may be. The sender lowers its path MTU (RFC 1191 §6.1).
    case fragmentationNeeded
    /// Type 3 code 2 or 3: the destination host has no such protocol or port (a "hard" error:
    /// a connecting socket fails at once, RFC 1122 §4.2.3.9).
    case protocolOrPortUnreachable(code: UInt8)
    /// Type 3, any other code (net/host unreachable, administratively prohibited...): a "soft"
    /// error, reported to a connecting socket after its retries.
    case destinationUnreachable(code: UInt8)
    /// Type 11 (TTL or reassembly time exceeded, RFC 792).
    case timeExceeded(code: UInt8)
    /// Type 12 (RFC 792).
    case parameterProblem(code: UInt8)

    public static let destinationUnreachableType: UInt8 = 3
    public static let timeExceededType: UInt8 = 11
    public static let parameterProblemType: UInt8 = 12
    public static let fragmentationNeededCode: UInt8 = 4

    public init?(type: UInt8, code: UInt8) {
        switch type {
        case Self.destinationUnreachableType:
            switch code {
            case Self.fragmentationNeededCode: self = .fragmentationNeeded
            case 2, 3: self = .protocolOrPortUnreachable(code: code)
            default: self = .destinationUnreachable(code: code)
            }
        case Self.timeExceededType: self = .timeExceeded(code: code)
        case Self.parameterProblemType: self = .parameterProblem(code: code)
        default: return nil
        }
    }
}

/// Why bytes were refused as an ICMPv4 error about TCP; `label` names it in logs and counters.
public enum ICMPWireError: Error, Sendable, Equatable {
    /// The outer datagram is not valid IPv4.
    case outer(WireError)
    case notICMP
    case fragment
    /// Shorter than the 8-byte ICMP header.
    case truncated
    /// The quoted datagram is shorter than an IPv4 header plus 8 bytes of its transport header.
    case quotedTruncated
    /// The quoted IPv4 header's version or header length is wrong.
    case quotedMalformed
    /// The quoted datagram is not TCP, or is a later fragment (no TCP header quoted).
    case quotedNotTCP

    /// The label drop counters use.
    public var label: String {
        switch self {
        case .outer(let e): e.rawValue
        case .notICMP: "not_icmp"
        case .fragment: "ip_fragment"
        case .truncated: "icmp_truncated"
        case .quotedTruncated: "icmp_quote_truncated"
        case .quotedMalformed: "icmp_quote_malformed"
        case .quotedNotTCP: "icmp_quote_not_tcp"
        }
    }
}
