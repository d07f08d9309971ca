/// What a packet's hot path needs from its TCP options, found in one walk of the option list
/// (instead of one walk per question: well-formed?, timestamp?, SACK?, splicable?).
///
/// The usual data segment's options are NOP, NOP, timestamp (RFC 7323 Appendix A layout):
/// that shape is recognised without a loop; anything else is walked once like `TCPOptions`.
public struct TCPOptionScan: Sendable, Equatable {
    /// The option list cannot be walked to its end (see `TCPOptions`).
    public var isMalformed = false
    /// Offset in the segment of the first timestamp option of the right length (RFC 7323 §3),
    /// or -1 when there is none.
    public var timestampOffset: Int = -1
    /// Some SACK option (RFC 2018) is present.
    public var hasSACK = false
    /// MPTCP, TCP-MD5 or TCP-AO is present (see `TCPOptions.hasUnspliceableOption`).
    public var hasUnspliceableOption = false

    @inlinable public init() {}

    /// Scans `segment`'s options once.
    @inlinable public init(_ segment: TCPSegment) {
        let end = segment.headerLength
        let b = segment.bytes
        if end == TCPSegment.minimumHeaderLength { return }
        // NOP NOP TS(10): 0x0101080A.
        if end == 32, b.u32(20) == 0x0101_080A {
            timestampOffset = 22
            return
        }
        var it = TCPOptions(segment: segment).makeIterator()
        while let slot = it.next() {
            switch slot.kind {
            case TCPOptionKind.timestamp:
                if slot.length == 10 && timestampOffset < 0 { timestampOffset = slot.offset }
            case TCPOptionKind.sack:
                hasSACK = true
            case TCPOptionKind.multipath, TCPOptionKind.md5Signature, TCPOptionKind.authentication:
                hasUnspliceableOption = true
            default:
                break
            }
        }
        isMalformed = it.isMalformed
    }

    /// The timestamp option's TSval, if there is one.
    @inlinable public func timestampValue(in segment: TCPSegment) -> UInt32? {
        timestampOffset < 0 ? nil : segment.bytes.u32(timestampOffset + 2)
    }
}
