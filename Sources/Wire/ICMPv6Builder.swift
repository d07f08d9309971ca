/// Builds ICMPv6 error messages (RFC 4443 §3) quoting a packet: what a router or a host sends
/// back about a packet it could not deliver. Tests use it to script routers; the layout is the
/// one `ICMPv6Message` reads.
public struct ICMPv6ErrorSpec: Sendable {
    public var source: IPv6Address
    public var destination: IPv6Address
    public var type: UInt8
    public var code: UInt8
    /// The word after the checksum: the MTU of a Packet Too Big (RFC 4443 §3.2), the pointer of
    /// a Parameter Problem (§3.4), else 0.
    public var parameter: UInt32
    public var hopLimit: UInt8

    public init(source: IPv6Address, destination: IPv6Address, type: UInt8, code: UInt8,
                parameter: UInt32 = 0, hopLimit: UInt8 = 64) {
        self.source = source; self.destination = destination; self.type = type; self.code = code
        self.parameter = parameter; self.hopLimit = hopLimit
    }

    /// "Packet Too Big" from `source` (a router) with the next link's MTU (RFC 4443 §3.2).
    public static func packetTooBig(from source: IPv6Address, to destination: IPv6Address, mtu: UInt32) -> ICMPv6ErrorSpec {
        ICMPv6ErrorSpec(source: source, destination: destination, type: ICMPv6ErrorKind.packetTooBigType, code: 0, parameter: mtu)
    }
    /// "Port unreachable" (type 1 code 4) from a host with no socket on the port.
    public static func portUnreachable(from source: IPv6Address, to destination: IPv6Address) -> ICMPv6ErrorSpec {
        ICMPv6ErrorSpec(source: source, destination: destination, type: ICMPv6ErrorKind.destinationUnreachableType,
                        code: ICMPv6ErrorKind.portUnreachableCode)
    }
    /// "Hop limit exceeded in transit" (type 3 code 0) from a router.
    public static func hopLimitExceeded(from source: IPv6Address, to destination: IPv6Address) -> ICMPv6ErrorSpec {
        ICMPv6ErrorSpec(source: source, destination: destination, type: ICMPv6ErrorKind.timeExceededType, code: 0)
    }
}

public enum ICMPv6Builder {
    /// RFC 4443 §2.4 (c): an error must not exceed the minimum IPv6 MTU.
    public static let maximumLength = 1280

    /// Writes an error quoting the start of `original` (as much as fits in `maximumLength`, or
    /// `quoteLength` bytes when given) and returns its length; nil when `buffer` is too small.
    /// The checksum is filled (RFC 4443 §2.3).
    public static func write(_ spec: ICMPv6ErrorSpec, quoting original: UnsafeRawBufferPointer, quoteLength: Int? = nil,
                             into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let headers = IPv6Packet.headerLength + ICMPv6Message.headerLength
        let quoted = max(0, min(original.count, quoteLength ?? (maximumLength - headers)))
        let total = headers + quoted
        guard total <= buffer.count else { return nil }
        typealias IP = IPv6Packet.Field
        buffer.setU32(IP.versionClassFlow, 6 << 28)
        buffer.setU16(IP.payloadLength, UInt16(total - IPv6Packet.headerLength))
        buffer[IP.nextHeader] = ICMPv6Message.protocolNumber
        buffer[IP.hopLimit] = spec.hopLimit
        buffer.setU64(IP.source, spec.source.high)
        buffer.setU64(IP.source + 8, spec.source.low)
        buffer.setU64(IP.destination, spec.destination.high)
        buffer.setU64(IP.destination + 8, spec.destination.low)
        let m = IPv6Packet.headerLength
        buffer[m] = spec.type
        buffer[m + 1] = spec.code
        buffer.setU16(m + 2, 0)
        buffer.setU32(m + 4, spec.parameter)
        if quoted > 0, let src = original.baseAddress, let dst = buffer.baseAddress {
            (dst + headers).copyMemory(from: src, byteCount: quoted)
        }
        let message = UnsafeMutableRawBufferPointer(rebasing: buffer[m..<total])
        let pseudo = IPv6Packet.pseudoHeaderSum(source: spec.source, destination: spec.destination,
                                                transportLength: message.count, protocolNumber: ICMPv6Message.protocolNumber)
        message.setU16(2, InternetChecksum.checksum(UnsafeRawBufferPointer(message), initial: pseudo))
        return total
    }

    /// The error as a new array (tests and control paths, not the hot path).
    public static func bytes(_ spec: ICMPv6ErrorSpec, quoting original: [UInt8], quoteLength: Int? = nil) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: maximumLength)
        let n = out.withUnsafeMutableBytes { buf in
            original.withUnsafeBytes { o in write(spec, quoting: o, quoteLength: quoteLength, into: buf) }
        } ?? 0
        return Array(out[0..<n])
    }
}
