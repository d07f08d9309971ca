/// ICMPv6 error messages about TCP segments (RFC 4443): the IPv6 counterpart of
/// `ICMPv4Message`, for translating a router's "Packet Too Big" (RFC 8201) or a host's
/// "Destination Unreachable" about a segment the proxy sent on a flow's behalf back to the end
/// that sent the original bytes.
///
/// Layout (RFC 4443 §2.1, §3): an IPv6 packet whose upper layer is ICMPv6 (58), then type (1),
/// code (1), checksum (2), a 32-bit word (Packet Too Big: the MTU, §3.2; Parameter Problem: the
/// pointer, §3.4; otherwise unused), then as much of the invoking packet as fits in the minimum
/// IPv6 MTU (§2.4 (c)).
///
/// Invariants after `init(validating:)`: the outer packet is valid IPv6 (`IPv6Packet`: no
/// fragment), its upper layer is ICMPv6, the message holds its 8-byte header; every accessor
/// stays inside the packet. The quote is checked separately (`quotedTCP`).
public struct ICMPv6Message {
    public let ip: IPv6Packet
    /// The ICMPv6 message: from its type byte to the packet's payload length.
    public let message: UnsafeMutableRawBufferPointer

    @usableFromInline enum Field {
        @usableFromInline static let type = 0, code = 1, checksum = 2, parameter = 4, quoted = 8
    }
    public static let headerLength = 8
    public static let protocolNumber: UInt8 = IPv6HeaderChain.Next.icmpv6

    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(ICMPWireError) {
        let ip: IPv6Packet
        do { ip = try IPv6Packet(validating: bytes) } catch {
            if error == .fragment { throw .fragment }
            throw .outer(error)
        }
        guard ip.transportProtocol == Self.protocolNumber else { throw .notICMP }
        let message = ip.payload
        guard message.count >= Self.headerLength else { throw .truncated }
        self.ip = ip
        self.message = message
    }

    public var type: UInt8 { message[Field.type] }
    public var code: UInt8 { message[Field.code] }
    public var checksum: UInt16 { message.u16(Field.checksum) }
    /// The 32-bit word after the checksum (MTU, pointer, or unused).
    public var parameter: UInt32 { message.u32(Field.parameter) }
    /// What kind of error this is, nil for an informational message (echo, neighbour
    /// discovery, MLD: types 128 and up, RFC 4443 §2.1) or an error type not translated.
    public var kind: ICMPv6ErrorKind? { ICMPv6ErrorKind(type: type, code: code) }

    /// The MTU of a "Packet Too Big" (RFC 4443 §3.2), nil for other messages.
    public var mtu: UInt32? { kind == .packetTooBig ? parameter : nil }

    /// The bytes after the 8-byte header: the quoted invoking packet.
    public var quotedBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: message[Field.quoted...])
    }

    /// The quoted packet as a TCP segment's header, when it is one.
    public func quotedTCP() throws(ICMPWireError) -> QuotedTCPv6 {
        try QuotedTCPv6(validating: quotedBytes)
    }

    /// The pseudo-header sum the checksum starts from (RFC 4443 §2.3, RFC 8200 §8.1: addresses,
    /// the message's length, next header 58).
    public var pseudoHeaderSum: UInt32 { ip.pseudoHeaderSum(transportLength: message.count) }

    /// True when the ICMPv6 checksum over the pseudo-header and the whole message is right.
    public var verifyChecksum: Bool {
        InternetChecksum.sum(UnsafeRawBufferPointer(message), initial: pseudoHeaderSum) == 0xFFFF
    }

    /// Recomputes the checksum (after the addresses or the quote changed: errors are at most
    /// 1280 bytes, RFC 4443 §2.4 (c), so summing again is cheap).
    public func fillChecksum() {
        message.setU16(Field.checksum, 0)
        message.setU16(Field.checksum, InternetChecksum.checksum(UnsafeRawBufferPointer(message), initial: pseudoHeaderSum))
    }

    /// Sets the MTU of a "Packet Too Big" (no checksum update: call `fillChecksum`).
    public func setMTU(_ mtu: UInt32) {
        guard kind == .packetTooBig else { return }
        message.setU32(Field.parameter, mtu)
    }
}

/// The ICMPv6 errors about a TCP segment (RFC 4443 §3), named for what the sender's TCP does
/// with them (RFC 5461, RFC 5927 §5; RFC 8201 for Packet Too Big).
public enum ICMPv6ErrorKind: Equatable, Sendable {
    /// Type 1 code 4: no socket on the port (a "hard" error for a connecting socket, RFC 5461 §4).
    case portUnreachable
    /// Type 1, any other code (no route 0, administratively prohibited 1, beyond scope 2,
    /// address unreachable 3, source policy 5, reject route 6): "soft" errors.
    case destinationUnreachable(code: UInt8)
    /// Type 2 (RFC 4443 §3.2, RFC 8201 §4): the sender lowers its path MTU.
    case packetTooBig
    /// Type 3 (hop limit 0, or reassembly time, RFC 4443 §3.3).
    case timeExceeded(code: UInt8)
    /// Type 4 (RFC 4443 §3.4); the pointer is the message's `parameter`.
    case parameterProblem(code: UInt8)

    public static let destinationUnreachableType: UInt8 = 1
    public static let packetTooBigType: UInt8 = 2
    public static let timeExceededType: UInt8 = 3
    public static let parameterProblemType: UInt8 = 4
    public static let portUnreachableCode: UInt8 = 4

    public init?(type: UInt8, code: UInt8) {
        switch type {
        case Self.destinationUnreachableType:
            self = code == Self.portUnreachableCode ? .portUnreachable : .destinationUnreachable(code: code)
        case Self.packetTooBigType: self = .packetTooBig
        case Self.timeExceededType: self = .timeExceeded(code: code)
        case Self.parameterProblemType: self = .parameterProblem(code: code)
        default: return nil
        }
    }
}
