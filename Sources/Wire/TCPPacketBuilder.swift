/// Builds TCP packets of either family: the engine's own segments (ACKs, RSTs, emulated-sender
/// data) and the tests' templates. Options are laid out in order and padded with NOPs to a
/// 4-byte boundary (RFC 9293 §3.1: the header length is in 32-bit words). Both endpoints are of
/// one family, which the packet takes; for IPv6, `ttl` is the hop limit and `tos` the traffic
/// class, and `identification` and `dontFragment` have no field (RFC 8200 §3).
public struct TCPPacketSpec: Sendable {
    public var source: IPEndpoint
    public var destination: IPEndpoint
    public var seq: SeqNumber
    public var ack: SeqNumber
    public var flags: TCPFlags
    public var window: UInt16
    public var options: [TCPOption]
    public var ttl: UInt8
    public var identification: UInt16
    public var dontFragment: Bool
    /// The IP TOS byte: DSCP (RFC 2474) and ECN codepoint (RFC 3168 §5).
    public var tos: UInt8
    /// The urgent pointer (RFC 9293 §3.1), meaningful with URG set: the offset from `seq` of
    /// the byte after the urgent data (RFC 6093 §2).
    public var urgentPointer: UInt16 = 0
    /// IPv6's flow label (RFC 6437), 20 bits; not written for IPv4.
    public var flowLabel: UInt32 = 0

    public init(source: IPEndpoint, destination: IPEndpoint, seq: SeqNumber = SeqNumber(0),
                ack: SeqNumber = SeqNumber(0), flags: TCPFlags = .ack, window: UInt16 = 65535,
                options: [TCPOption] = [], ttl: UInt8 = 64, identification: UInt16 = 0,
                dontFragment: Bool = true, tos: UInt8 = 0) {
        self.source = source; self.destination = destination; self.seq = seq; self.ack = ack
        self.flags = flags; self.window = window; self.options = options; self.ttl = ttl
        self.identification = identification; self.dontFragment = dontFragment; self.tos = tos
    }
    /// An IPv4 packet's spec.
    public init(source: IPv4Endpoint, destination: IPv4Endpoint, seq: SeqNumber = SeqNumber(0),
                ack: SeqNumber = SeqNumber(0), flags: TCPFlags = .ack, window: UInt16 = 65535,
                options: [TCPOption] = [], ttl: UInt8 = 64, identification: UInt16 = 0,
                dontFragment: Bool = true, tos: UInt8 = 0) {
        self.init(source: IPEndpoint(source), destination: IPEndpoint(destination), seq: seq, ack: ack, flags: flags,
                  window: window, options: options, ttl: ttl, identification: identification,
                  dontFragment: dontFragment, tos: tos)
    }

    /// Bytes the options take, padded to a multiple of 4.
    public var optionsLength: Int {
        let raw = options.reduce(0) { $0 + $1.encodedLength }
        return (raw + 3) & ~3
    }
    public var headerLength: Int { source.family.headerLength + TCPSegment.minimumHeaderLength + optionsLength }
}

public enum TCPPacketBuilder {
    /// The most option bytes a TCP header can hold (data offset 15 words, RFC 9293 §3.1).
    public static let maximumOptionsLength = 40

    /// Writes the packet into `buffer` and returns its length, or nil when it does not fit
    /// (in `buffer`, in 65535 bytes, or options longer than 40 bytes), or when its endpoints
    /// are of different families. Checksums are filled.
    public static func write(_ spec: TCPPacketSpec, payload: UnsafeRawBufferPointer,
                             into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard spec.optionsLength <= maximumOptionsLength else { return nil }
        let source: IPv4Address, destination: IPv4Address
        switch (spec.source.address, spec.destination.address) {
        case (.v4(let s), .v4(let d)): source = s; destination = d
        case (.v6(let s), .v6(let d)):
            var v6 = TCPIPv6PacketSpec(source: IPv6Endpoint(s, spec.source.port), destination: IPv6Endpoint(d, spec.destination.port),
                                       seq: spec.seq, ack: spec.ack, flags: spec.flags, window: spec.window,
                                       options: spec.options, hopLimit: spec.ttl, trafficClass: spec.tos,
                                       flowLabel: spec.flowLabel)
            v6.urgentPointer = spec.urgentPointer
            return write(v6, payload: payload, into: buffer)
        default: return nil
        }
        let total = spec.headerLength + payload.count
        guard total <= buffer.count, total <= 65535 else { return nil }
        let ipLen = IPv4Packet.minimumHeaderLength
        // IPv4 header (RFC 791 §3.1): version 4, no options.
        typealias IP = IPv4Packet.Field
        buffer[IP.versionIHL] = 0x40 | UInt8(ipLen / 4)
        buffer[IP.tos] = spec.tos
        buffer.setU16(IP.totalLength, UInt16(total))
        buffer.setU16(IP.identification, spec.identification)
        buffer.setU16(IP.flagsFragment, spec.dontFragment ? 0x4000 : 0)
        buffer[IP.ttl] = spec.ttl
        buffer[IP.proto] = 6
        buffer.setU16(IP.checksum, 0)
        buffer.setU32(IP.source, source.value)
        buffer.setU32(IP.destination, destination.value)
        writeTCP(sourcePort: spec.source.port, destinationPort: spec.destination.port, seq: spec.seq, ack: spec.ack,
                 flags: spec.flags, window: spec.window, urgentPointer: spec.urgentPointer, options: spec.options,
                 optionsLength: spec.optionsLength, payload: payload, at: ipLen, into: buffer)
        let t = ipLen
        let ip = IPv4Packet(unchecked: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<total]))
        ip.fillHeaderChecksum()
        let seg = TCPSegment(uncheckedBytes: UnsafeMutableRawBufferPointer(rebasing: buffer[t..<total]))
        seg.fillChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: total - t))
        return total
    }

    /// Writes the TCP header at `t` (RFC 9293 §3.1: options in order, NOP-padded to a 4-byte
    /// boundary; checksum 0) and the payload after it. The caller checked that all fits.
    static func writeTCP(sourcePort: UInt16, destinationPort: UInt16, seq: SeqNumber, ack: SeqNumber,
                         flags: TCPFlags, window: UInt16, urgentPointer: UInt16, options: [TCPOption], optionsLength: Int,
                         payload: UnsafeRawBufferPointer, at t: Int, into buffer: UnsafeMutableRawBufferPointer) {
        typealias TCP = TCPSegment.Field
        let tcpLen = TCPSegment.minimumHeaderLength + optionsLength
        buffer.setU16(t + TCP.sourcePort, sourcePort)
        buffer.setU16(t + TCP.destinationPort, destinationPort)
        buffer.setU32(t + TCP.seq, seq.rawValue)
        buffer.setU32(t + TCP.ack, ack.rawValue)
        buffer[t + TCP.dataOffset] = UInt8(tcpLen / 4) << 4
        buffer[t + TCP.flags] = flags.rawValue
        buffer.setU16(t + TCP.window, window)
        buffer.setU16(t + TCP.checksum, 0)
        buffer.setU16(t + TCP.urgent, urgentPointer)
        var o = t + TCPSegment.minimumHeaderLength
        for opt in options {
            typealias Kind = TCPOptionKind
            switch opt {
            case .endOfList: buffer[o] = Kind.endOfList
            case .noOperation: buffer[o] = Kind.noOperation
            case .maximumSegmentSize(let m): buffer[o] = Kind.maximumSegmentSize; buffer[o + 1] = 4; buffer.setU16(o + 2, m)
            case .windowScale(let s): buffer[o] = Kind.windowScale; buffer[o + 1] = 3; buffer[o + 2] = s
            case .sackPermitted: buffer[o] = Kind.sackPermitted; buffer[o + 1] = 2
            case .sack(let blocks):
                buffer[o] = Kind.sack; buffer[o + 1] = UInt8(2 + 8 * blocks.count)
                for (i, b) in blocks.enumerated() {
                    buffer.setU32(o + 2 + 8 * i, b.left.rawValue)
                    buffer.setU32(o + 6 + 8 * i, b.right.rawValue)
                }
            case .timestamp(let v, let e): buffer[o] = Kind.timestamp; buffer[o + 1] = 10; buffer.setU32(o + 2, v); buffer.setU32(o + 6, e)
            case .raw(let b): for (i, x) in b.enumerated() { buffer[o + i] = x }
            }
            o += opt.encodedLength
        }
        while o < t + tcpLen { buffer[o] = TCPOptionKind.noOperation; o += 1 } // padding
        if payload.count > 0, let src = payload.baseAddress, let dst = buffer.baseAddress {
            (dst + o).copyMemory(from: src, byteCount: payload.count)
        }
    }

    /// The packet as a new array (tests, control paths; not the hot path). Traps when the
    /// packet cannot be built (options over 40 bytes, over 65535 bytes in all): a caller bug.
    public static func bytes(_ spec: TCPPacketSpec, payload: [UInt8] = []) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: spec.headerLength + payload.count)
        let written = out.withUnsafeMutableBytes { buf in
            payload.withUnsafeBytes { p in write(spec, payload: p, into: buf) }
        }
        precondition(written != nil, "TCPPacketBuilder: options (\(spec.optionsLength) bytes) or length do not fit a TCP/IPv4 packet")
        return out
    }
}

extension TCPSegment {
    init(uncheckedBytes bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }
}
