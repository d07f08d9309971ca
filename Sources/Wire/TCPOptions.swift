/// TCP option kinds this project reads (RFC 9293 §3.2; RFC 7323; RFC 2018; RFC 8684; RFC
/// 2385; RFC 5925).
public enum TCPOptionKind {
    public static let endOfList: UInt8 = 0
    public static let noOperation: UInt8 = 1
    public static let maximumSegmentSize: UInt8 = 2
    public static let windowScale: UInt8 = 3
    public static let sackPermitted: UInt8 = 4
    public static let sack: UInt8 = 5
    public static let timestamp: UInt8 = 8
    public static let md5Signature: UInt8 = 19
    public static let authentication: UInt8 = 29
    public static let multipath: UInt8 = 30
}

/// One option as found in a segment: its kind, where it starts (offset in the segment) and
/// its total length in bytes (1 for EOL/NOP).
public struct TCPOptionSlot: Sendable, Equatable {
    public let kind: UInt8
    public let offset: Int
    public let length: Int
}

/// The option list of a segment, walked without allocating. A malformed list (a length below
/// 2 or running past the header) ends the walk and sets `isMalformed`; what was read before
/// stays valid.
public struct TCPOptions: Sequence {
    public let segment: TCPSegment
    public init(segment: TCPSegment) { self.segment = segment }

    public struct Iterator: IteratorProtocol {
        let bytes: UnsafeMutableRawBufferPointer
        var offset: Int
        let end: Int
        public private(set) var isMalformed = false

        public mutating func next() -> TCPOptionSlot? {
            guard offset < end else { return nil }
            let kind = bytes[offset]
            if kind == TCPOptionKind.endOfList {
                let slot = TCPOptionSlot(kind: kind, offset: offset, length: 1)
                offset = end // nothing after EOL is an option
                return slot
            }
            if kind == TCPOptionKind.noOperation {
                defer { offset += 1 }
                return TCPOptionSlot(kind: kind, offset: offset, length: 1)
            }
            guard offset + 1 < end else { isMalformed = true; offset = end; return nil }
            let len = Int(bytes[offset + 1])
            guard len >= 2, offset + len <= end else { isMalformed = true; offset = end; return nil }
            defer { offset += len }
            return TCPOptionSlot(kind: kind, offset: offset, length: len)
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(bytes: segment.bytes, offset: TCPSegment.minimumHeaderLength, end: segment.headerLength)
    }

    /// True when the option list cannot be walked to its end.
    public var isMalformed: Bool {
        var it = makeIterator()
        while it.next() != nil {}
        return it.isMalformed
    }

    /// Decodes a slot; options whose length does not match their kind decode as `.raw`.
    public func decode(_ slot: TCPOptionSlot) -> TCPOption {
        let b = segment.bytes, o = slot.offset
        switch (slot.kind, slot.length) {
        case (TCPOptionKind.endOfList, _): return .endOfList
        case (TCPOptionKind.noOperation, _): return .noOperation
        case (TCPOptionKind.maximumSegmentSize, 4): return .maximumSegmentSize(b.u16(o + 2))
        case (TCPOptionKind.windowScale, 3): return .windowScale(b[o + 2])
        case (TCPOptionKind.sackPermitted, 2): return .sackPermitted
        case (TCPOptionKind.sack, _) where sackBlockCount(slot) != nil:
            return .sack((0..<(sackBlockCount(slot) ?? 0)).map { i in let (l, r) = sackBlock(slot, i); return SackBlock(l, r) })
        case (TCPOptionKind.timestamp, 10): return .timestamp(value: b.u32(o + 2), echoReply: b.u32(o + 6))
        default: return .raw(Array(UnsafeRawBufferPointer(rebasing: b[o..<(o + slot.length)])))
        }
    }

    /// The first option of `kind`, decoded.
    public func first(kind: UInt8) -> (TCPOptionSlot, TCPOption)? {
        for slot in self where slot.kind == kind { return (slot, decode(slot)) }
        return nil
    }

    public var maximumSegmentSize: UInt16? {
        if case .maximumSegmentSize(let v)? = first(kind: TCPOptionKind.maximumSegmentSize)?.1 { return v }
        return nil
    }
    public var windowScale: UInt8? {
        if case .windowScale(let v)? = first(kind: TCPOptionKind.windowScale)?.1 { return v }
        return nil
    }
    public var sackPermitted: Bool { first(kind: TCPOptionKind.sackPermitted) != nil }
    public var timestamp: (value: UInt32, echoReply: UInt32)? {
        if case .timestamp(let v, let e)? = first(kind: TCPOptionKind.timestamp)?.1 { return (v, e) }
        return nil
    }

    /// Options whose flows cannot be spliced: MPTCP (RFC 8684), TCP-MD5 (RFC 2385) and TCP-AO
    /// (RFC 5925) bind the segment to its original endpoints.
    public var hasUnspliceableOption: Bool {
        for slot in self {
            switch slot.kind {
            case TCPOptionKind.multipath, TCPOptionKind.md5Signature, TCPOptionKind.authentication: return true
            default: continue
            }
        }
        return false
    }

    /// Overwrites an option with NOPs in place (no resize), keeping the checksum
    /// (DESIGN §5: neutralise options the other side did not negotiate).
    public func neutralise(_ slot: TCPOptionSlot) {
        for i in slot.offset..<(slot.offset + slot.length) { segment.setByte(i, TCPOptionKind.noOperation) }
    }

    /// How many blocks a SACK slot holds (RFC 2018 §3: 2 + 8n bytes, n >= 1), nil when its
    /// length is not one a SACK option can have. No allocation (the packet path remaps SACK).
    public func sackBlockCount(_ slot: TCPOptionSlot) -> Int? {
        guard slot.kind == TCPOptionKind.sack, slot.length >= 10, (slot.length - 2) % 8 == 0 else { return nil }
        return (slot.length - 2) / 8
    }

    /// The D-SACK block of an acknowledgment, if it carries one: its first SACK block reports
    /// a duplicate when it lies at or below the cumulative `ack`, or inside the second block
    /// (RFC 2883 §4). nil without SACK or when the first block is an ordinary one.
    public func duplicateSack(ack: SeqNumber) -> SackBlock? {
        for slot in self where slot.kind == TCPOptionKind.sack {
            guard let n = sackBlockCount(slot) else { return nil }
            let (l, r) = sackBlock(slot, 0)
            guard l.lessThan(r) else { return nil }
            if r.lessThanOrEqual(ack) { return SackBlock(l, r) }
            if n > 1 {
                let (l2, r2) = sackBlock(slot, 1)
                if l2.lessThanOrEqual(l) && r.lessThanOrEqual(r2) { return SackBlock(l, r) }
            }
            return nil
        }
        return nil
    }

    /// SACK block `i` of a `.sack` slot: (left edge, right edge) (RFC 2018 §3).
    public func sackBlock(_ slot: TCPOptionSlot, _ i: Int) -> (SeqNumber, SeqNumber) {
        let o = slot.offset + 2 + 8 * i
        return (SeqNumber(segment.bytes.u32(o)), SeqNumber(segment.bytes.u32(o + 4)))
    }
    public func setSackBlock(_ slot: TCPOptionSlot, _ i: Int, _ left: SeqNumber, _ right: SeqNumber) {
        let o = slot.offset + 2 + 8 * i
        segment.set32(o, left.rawValue)
        segment.set32(o + 4, right.rawValue)
    }
    /// Rewrites the timestamp option's fields (RFC 7323 §3).
    public func setTimestamp(_ slot: TCPOptionSlot, value: UInt32, echoReply: UInt32) {
        segment.set32(slot.offset + 2, value)
        segment.set32(slot.offset + 6, echoReply)
    }
    public func setMaximumSegmentSize(_ slot: TCPOptionSlot, _ mss: UInt16) {
        segment.set16(slot.offset + 2, mss)
    }
}
