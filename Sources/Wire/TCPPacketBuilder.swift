/// Builds IPv4/TCP packets: the engine's own segments (ACKs, RSTs, emulated-sender data) and
/// the tests' templates. Options are laid out in order and padded with NOPs to a 4-byte
/// boundary (RFC 9293 §3.1: the header length is in 32-bit words).
public struct TCPPacketSpec: Sendable {
    public var source: IPv4Endpoint
    public var destination: IPv4Endpoint
    public var seq: SeqNumber
    public var ack: SeqNumber
    public var flags: TCPFlags
    public var window: UInt16
    public var options: [TCPOptionValue]
    public var ttl: UInt8
    public var identification: UInt16
    public var dontFragment: Bool

    public init(source: IPv4Endpoint, destination: IPv4Endpoint, seq: SeqNumber = SeqNumber(0),
                ack: SeqNumber = SeqNumber(0), flags: TCPFlags = .ack, window: UInt16 = 65535,
                options: [TCPOptionValue] = [], ttl: UInt8 = 64, identification: UInt16 = 0,
                dontFragment: Bool = true) {
        self.source = source; self.destination = destination; self.seq = seq; self.ack = ack
        self.flags = flags; self.window = window; self.options = options; self.ttl = ttl
        self.identification = identification; self.dontFragment = dontFragment
    }

    /// Bytes the options take, padded to a multiple of 4.
    public var optionsLength: Int {
        let raw = options.reduce(0) { $0 + $1.encodedLength }
        return (raw + 3) & ~3
    }
    public var headerLength: Int { IPv4Packet.minimumHeaderLength + TCPSegment.minimumHeaderLength + optionsLength }
}

/// An option to encode.
public enum TCPOptionValue: Sendable, Equatable {
    case noOperation
    case maximumSegmentSize(UInt16)
    case windowScale(UInt8)
    case sackPermitted
    case sack([SackBlock])
    case timestamp(value: UInt32, echoReply: UInt32)
    /// Any other bytes, written as they are (kind and length included).
    case raw([UInt8])

    public var encodedLength: Int {
        switch self {
        case .noOperation: return 1
        case .maximumSegmentSize: return 4
        case .windowScale: return 3
        case .sackPermitted: return 2
        case .sack(let blocks): return 2 + 8 * blocks.count
        case .timestamp: return 10
        case .raw(let b): return b.count
        }
    }
}

/// A SACK block: [left, right) in sequence space (RFC 2018 §3).
public struct SackBlock: Sendable, Equatable, Hashable {
    public var left: SeqNumber
    public var right: SeqNumber
    public init(_ left: SeqNumber, _ right: SeqNumber) { self.left = left; self.right = right }
}

public enum TCPPacketBuilder {
    /// The most option bytes a TCP header can hold (data offset 15 words, RFC 9293 §3.1).
    public static let maximumOptionsLength = 40

    /// Writes the packet into `buffer` and returns its length, or nil when it does not fit
    /// (in `buffer`, in 65535 bytes, or options longer than 40 bytes). Checksums are filled.
    public static func write(_ spec: TCPPacketSpec, payload: UnsafeRawBufferPointer,
                             into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        guard spec.optionsLength <= maximumOptionsLength else { return nil }
        let total = spec.headerLength + payload.count
        guard total <= buffer.count, total <= 65535 else { return nil }
        let ipLen = IPv4Packet.minimumHeaderLength
        let tcpLen = TCPSegment.minimumHeaderLength + spec.optionsLength
        // IPv4 header (RFC 791 §3.1).
        buffer[0] = 0x45
        buffer[1] = 0
        buffer.setU16(2, UInt16(total))
        buffer.setU16(4, spec.identification)
        buffer.setU16(6, spec.dontFragment ? 0x4000 : 0)
        buffer[8] = spec.ttl
        buffer[9] = 6
        buffer.setU16(10, 0)
        buffer.setU32(12, spec.source.address.value)
        buffer.setU32(16, spec.destination.address.value)
        // TCP header (RFC 9293 §3.1).
        let t = ipLen
        buffer.setU16(t, spec.source.port)
        buffer.setU16(t + 2, spec.destination.port)
        buffer.setU32(t + 4, spec.seq.rawValue)
        buffer.setU32(t + 8, spec.ack.rawValue)
        buffer[t + 12] = UInt8(tcpLen / 4) << 4
        buffer[t + 13] = spec.flags.rawValue
        buffer.setU16(t + 14, spec.window)
        buffer.setU16(t + 16, 0)
        buffer.setU16(t + 18, 0)
        var o = t + TCPSegment.minimumHeaderLength
        for opt in spec.options {
            switch opt {
            case .noOperation: buffer[o] = 1
            case .maximumSegmentSize(let m): buffer[o] = 2; buffer[o + 1] = 4; buffer.setU16(o + 2, m)
            case .windowScale(let s): buffer[o] = 3; buffer[o + 1] = 3; buffer[o + 2] = s
            case .sackPermitted: buffer[o] = 4; buffer[o + 1] = 2
            case .sack(let blocks):
                buffer[o] = 5; buffer[o + 1] = UInt8(2 + 8 * blocks.count)
                for (i, b) in blocks.enumerated() {
                    buffer.setU32(o + 2 + 8 * i, b.left.rawValue)
                    buffer.setU32(o + 6 + 8 * i, b.right.rawValue)
                }
            case .timestamp(let v, let e): buffer[o] = 8; buffer[o + 1] = 10; buffer.setU32(o + 2, v); buffer.setU32(o + 6, e)
            case .raw(let b): for (i, x) in b.enumerated() { buffer[o + i] = x }
            }
            o += opt.encodedLength
        }
        while o < t + tcpLen { buffer[o] = 1; o += 1 } // NOP padding
        if payload.count > 0, let src = payload.baseAddress {
            (buffer.baseAddress! + o).copyMemory(from: src, byteCount: payload.count)
        }
        let ip = IPv4Packet(unchecked: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<total]))
        ip.fillHeaderChecksum()
        let seg = TCPSegment(uncheckedBytes: UnsafeMutableRawBufferPointer(rebasing: buffer[t..<total]))
        seg.fillChecksum(pseudoHeaderSum: ip.pseudoHeaderSum(transportLength: total - t))
        return total
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
