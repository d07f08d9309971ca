/// One TCP option (RFC 9293 §3.2; RFC 7323; RFC 2018), the same type whether it was parsed
/// from a segment (`TCPOptions.decode`) or is to be written (`TCPPacketBuilder`): a decoded
/// option encodes back to the bytes it came from.
public enum TCPOption: Equatable, Sendable {
    case endOfList
    case noOperation
    case maximumSegmentSize(UInt16)
    case windowScale(UInt8)
    case sackPermitted
    /// SACK blocks (RFC 2018 §3).
    case sack([SackBlock])
    case timestamp(value: UInt32, echoReply: UInt32)
    /// Any other option, or one whose length does not match its kind: its bytes as they are
    /// (kind and length included).
    case raw([UInt8])

    /// Bytes the option takes in a header.
    public var encodedLength: Int {
        switch self {
        case .endOfList, .noOperation: return 1
        case .maximumSegmentSize: return 4
        case .windowScale: return 3
        case .sackPermitted: return 2
        case .sack(let blocks): return 2 + 8 * blocks.count
        case .timestamp: return 10
        case .raw(let b): return b.count
        }
    }

    /// The timestamp option as every segment the proxy makes carries it: NOP, NOP, timestamp,
    /// 12 bytes aligned on 32 bits (RFC 7323 Appendix A).
    public static func alignedTimestamp(value: UInt32, echoReply: UInt32) -> [TCPOption] {
        [.noOperation, .noOperation, .timestamp(value: value, echoReply: echoReply)]
    }

    /// Bytes `alignedTimestamp` takes: what it costs each segment's payload (RFC 9293 §3.7.1).
    public static let alignedTimestampLength = 12
}

/// A SACK block: [left, right) in sequence space (RFC 2018 §3).
public struct SackBlock: Sendable, Equatable, Hashable {
    public var left: SeqNumber
    public var right: SeqNumber
    public init(_ left: SeqNumber, _ right: SeqNumber) { self.left = left; self.right = right }
}
