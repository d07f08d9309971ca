/// What an IPv6 TCP segment the proxy or a test builds holds (RFC 8200 §3, RFC 9293 §3.1): the
/// IPv6 counterpart of `TCPPacketSpec`, with the same TCP fields under the same names. No
/// extension headers: the proxy's own segments carry none.
public struct TCPIPv6PacketSpec: Sendable {
    public var source: IPv6Endpoint
    public var destination: IPv6Endpoint
    public var seq: SeqNumber
    public var ack: SeqNumber
    public var flags: TCPFlags
    public var window: UInt16
    public var options: [TCPOption]
    public var hopLimit: UInt8
    /// DSCP and ECN codepoint (RFC 8200 §7, RFC 2474, RFC 3168 §5).
    public var trafficClass: UInt8
    /// The flow label, 20 bits (RFC 6437; ECMP paths hash on it, so a flow keeps one).
    public var flowLabel: UInt32
    /// The urgent pointer (RFC 9293 §3.1), meaningful with URG set.
    public var urgentPointer: UInt16 = 0

    public init(source: IPv6Endpoint, destination: IPv6Endpoint, seq: SeqNumber = SeqNumber(0),
                ack: SeqNumber = SeqNumber(0), flags: TCPFlags = .ack, window: UInt16 = 65535,
                options: [TCPOption] = [], hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) {
        self.source = source; self.destination = destination; self.seq = seq; self.ack = ack
        self.flags = flags; self.window = window; self.options = options; self.hopLimit = hopLimit
        self.trafficClass = trafficClass; self.flowLabel = flowLabel
    }

    /// Bytes the options take, padded to a multiple of 4.
    public var optionsLength: Int {
        let raw = options.reduce(0) { $0 + $1.encodedLength }
        return (raw + 3) & ~3
    }
    public var headerLength: Int { IPv6Packet.headerLength + TCPSegment.minimumHeaderLength + optionsLength }
}

extension TCPPacketBuilder {
    /// Writes the IPv6 packet into `buffer` and returns its length, or nil when it does not fit
    /// (in `buffer`; a TCP segment over 65535 bytes, which needs a jumbogram, RFC 2675; options
    /// longer than 40 bytes; a flow label over 20 bits). The TCP checksum is filled over the
    /// IPv6 pseudo-header (RFC 8200 §8.1).
    public static func write(_ spec: TCPIPv6PacketSpec, payload: UnsafeRawBufferPointer,
                             into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard spec.optionsLength <= maximumOptionsLength, spec.flowLabel <= 0xF_FFFF else { return nil }
        let tcpLength = TCPSegment.minimumHeaderLength + spec.optionsLength + payload.count
        let total = IPv6Packet.headerLength + tcpLength
        guard tcpLength <= 65535, total <= buffer.count else { return nil }
        typealias IP = IPv6Packet.Field
        buffer.setU32(IP.versionClassFlow, 6 << 28 | UInt32(spec.trafficClass) << 20 | spec.flowLabel)
        buffer.setU16(IP.payloadLength, UInt16(tcpLength))
        buffer[IP.nextHeader] = IPv6HeaderChain.Next.tcp
        buffer[IP.hopLimit] = spec.hopLimit
        buffer.setU64(IP.source, spec.source.address.high)
        buffer.setU64(IP.source + 8, spec.source.address.low)
        buffer.setU64(IP.destination, spec.destination.address.high)
        buffer.setU64(IP.destination + 8, spec.destination.address.low)
        let t = IPv6Packet.headerLength
        writeTCP(sourcePort: spec.source.port, destinationPort: spec.destination.port, seq: spec.seq, ack: spec.ack,
                 flags: spec.flags, window: spec.window, urgentPointer: spec.urgentPointer, options: spec.options,
                 optionsLength: spec.optionsLength, payload: payload, at: t, into: buffer)
        let seg = TCPSegment(uncheckedBytes: UnsafeMutableRawBufferPointer(rebasing: buffer[t..<total]))
        seg.fillChecksum(pseudoHeaderSum: IPv6Packet.pseudoHeaderSum(
            source: spec.source.address, destination: spec.destination.address,
            transportLength: tcpLength, protocolNumber: IPv6HeaderChain.Next.tcp))
        return total
    }

    /// The IPv6 packet as a new array (tests, control paths; not the hot path). Traps when it
    /// cannot be built (see `write`): a caller bug.
    public static func bytes(_ spec: TCPIPv6PacketSpec, payload: [UInt8] = []) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: spec.headerLength + payload.count)
        let written = out.withUnsafeMutableBytes { buf in
            payload.withUnsafeBytes { p in write(spec, payload: p, into: buf) }
        }
        precondition(written != nil, "TCPPacketBuilder: options (\(spec.optionsLength) bytes), flow label or length do not fit a TCP/IPv6 packet")
        return out
    }
}
