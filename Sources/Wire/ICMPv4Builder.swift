/// Builds ICMPv4 error messages (RFC 792) quoting a datagram: what a router or a host sends
/// back about a packet it could not deliver. Tests use it to script routers; the layout is the
/// one `ICMPv4Message` reads.
public struct ICMPv4ErrorSpec: Sendable {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var type: UInt8
    public var code: UInt8
    /// The next-hop MTU of a "fragmentation needed" (RFC 1191 §4); ignored for other messages.
    public var nextHopMTU: UInt16
    public var ttl: UInt8

    public init(source: IPv4Address, destination: IPv4Address, type: UInt8, code: UInt8,
                nextHopMTU: UInt16 = 0, ttl: UInt8 = 64) {
        self.source = source; self.destination = destination; self.type = type; self.code = code
        self.nextHopMTU = nextHopMTU; self.ttl = ttl
    }

    /// "Fragmentation needed and DF set" from `source` (a router) with its next-hop MTU.
    public static func fragmentationNeeded(from source: IPv4Address, to destination: IPv4Address, mtu: UInt16) -> ICMPv4ErrorSpec {
        ICMPv4ErrorSpec(source: source, destination: destination, type: ICMPv4ErrorKind.destinationUnreachableType,
                        code: ICMPv4ErrorKind.fragmentationNeededCode, nextHopMTU: mtu)
    }
    /// "Port unreachable" (type 3 code 3) from a host with no socket on the port.
    public static func portUnreachable(from source: IPv4Address, to destination: IPv4Address) -> ICMPv4ErrorSpec {
        ICMPv4ErrorSpec(source: source, destination: destination, type: ICMPv4ErrorKind.destinationUnreachableType, code: 3)
    }
}

public enum ICMPv4Builder {
    /// RFC 1812 §4.3.2.3: an ICMP error should not exceed 576 bytes.
    public static let maximumLength = 576

    /// Writes an error quoting the start of `original` (as much as fits in `maximumLength`, and
    /// at least what `quoteLength` asks, when given) and returns its length; nil when `buffer`
    /// is too small. Both checksums are filled.
    public static func write(_ spec: ICMPv4ErrorSpec, quoting original: UnsafeRawBufferPointer, quoteLength: Int? = nil,
                             into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let headers = IPv4Packet.minimumHeaderLength + ICMPv4Message.headerLength
        let quoted = min(original.count, quoteLength ?? (maximumLength - headers))
        let total = headers + quoted
        guard total <= buffer.count else { return nil }
        typealias IP = IPv4Packet.Field
        buffer[IP.versionIHL] = 0x45
        buffer[IP.tos] = 0xC0 // internetwork control, as Linux sends its ICMP errors
        buffer.setU16(IP.totalLength, UInt16(total))
        buffer.setU16(IP.identification, 0)
        buffer.setU16(IP.flagsFragment, 0)
        buffer[IP.ttl] = spec.ttl
        buffer[IP.proto] = ICMPv4Message.protocolNumber
        buffer.setU16(IP.checksum, 0)
        buffer.setU32(IP.source, spec.source.value)
        buffer.setU32(IP.destination, spec.destination.value)
        let m = IPv4Packet.minimumHeaderLength
        buffer[m] = spec.type
        buffer[m + 1] = spec.code
        buffer.setU16(m + 2, 0)
        buffer.setU16(m + 4, 0)
        let isFragNeeded = spec.type == ICMPv4ErrorKind.destinationUnreachableType && spec.code == ICMPv4ErrorKind.fragmentationNeededCode
        buffer.setU16(m + 6, isFragNeeded ? spec.nextHopMTU : 0)
        if quoted > 0, let src = original.baseAddress, let dst = buffer.baseAddress {
            (dst + headers).copyMemory(from: src, byteCount: quoted)
        }
        let ip = IPv4Packet(unchecked: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<total]))
        ip.fillHeaderChecksum()
        let message = UnsafeMutableRawBufferPointer(rebasing: buffer[m..<total])
        message.setU16(2, InternetChecksum.checksum(UnsafeRawBufferPointer(message)))
        return total
    }

    /// The error as a new array (tests and control paths, not the hot path).
    public static func bytes(_ spec: ICMPv4ErrorSpec, quoting original: [UInt8], quoteLength: Int? = nil) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: maximumLength)
        let n = out.withUnsafeMutableBytes { buf in
            original.withUnsafeBytes { o in write(spec, quoting: o, quoteLength: quoteLength, into: buf) }
        } ?? 0
        return Array(out[0..<n])
    }
}
