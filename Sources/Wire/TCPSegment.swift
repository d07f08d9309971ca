/// TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    // Inlinable computed constants, not `static let`s: another module reaches a `static let`
    // through a call (the lazy global's addressor) at every use, several per segment on the
    // engine's path; these fold into the flag tests.
    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
    public var description: String {
        let names: [(TCPFlags, String)] = [(.syn, "S"), (.fin, "F"), (.rst, "R"), (.psh, "P"), (.ack, "."), (.urg, "U"), (.ece, "E"), (.cwr, "W")]
        let s = names.filter { contains($0.0) }.map(\.1).joined()
        return s.isEmpty ? "none" : s
    }
}

/// A view over a TCP segment's bytes (RFC 9293 §3.1): header, options and payload.
///
/// After `init(validating:)`: `20 <= headerLength <= bytes.count`; accessors never leave
/// `bytes`. Setters update the checksum incrementally (RFC 1624) so a rewrite never re-sums
/// the payload.
public struct TCPSegment {
    public let bytes: UnsafeMutableRawBufferPointer

    @usableFromInline enum Field {
        @usableFromInline static let sourcePort = 0, destinationPort = 2, seq = 4, ack = 8, dataOffset = 12
        @usableFromInline static let flags = 13, window = 14, checksum = 16, urgent = 18
    }
    public static let minimumHeaderLength = 20

    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard bytes.count >= TCPSegment.minimumHeaderLength else { throw .truncated }
        let hl = Int(bytes[Field.dataOffset] >> 4) * 4
        guard hl >= TCPSegment.minimumHeaderLength else { throw .badTCPHeaderLength }
        guard hl <= bytes.count else { throw .truncated }
        self.bytes = bytes
    }

    @inlinable public var sourcePort: UInt16 { bytes.u16(Field.sourcePort) }
    @inlinable public var destinationPort: UInt16 { bytes.u16(Field.destinationPort) }
    @inlinable public var seq: SeqNumber { SeqNumber(bytes.u32(Field.seq)) }
    @inlinable public var ack: SeqNumber { SeqNumber(bytes.u32(Field.ack)) }
    @inlinable public var headerLength: Int { Int(bytes[Field.dataOffset] >> 4) * 4 }
    @inlinable public var flags: TCPFlags { TCPFlags(rawValue: bytes[Field.flags]) }
    @inlinable public var window: UInt16 { bytes.u16(Field.window) }
    @inlinable public var checksum: UInt16 { bytes.u16(Field.checksum) }
    @inlinable public var urgentPointer: UInt16 { bytes.u16(Field.urgent) }
    @inlinable public var payloadLength: Int { bytes.count - headerLength }
    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN.
    @inlinable public var sequenceLength: UInt32 {
        UInt32(payloadLength) + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }

    @inlinable public var payload: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[headerLength...])
    }
    @inlinable public var optionBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[TCPSegment.minimumHeaderLength..<headerLength])
    }
    /// The options, walked lazily. See `TCPOptions` for malformed-option handling.
    @inlinable public var options: TCPOptions { TCPOptions(segment: self) }

    /// True when the checksum over `pseudoHeaderSum` and the whole segment is right.
    @inlinable public func verifyChecksum(pseudoHeaderSum: UInt32) -> Bool {
        InternetChecksum.sum(UnsafeRawBufferPointer(bytes), initial: pseudoHeaderSum) == 0xFFFF
    }
    /// Recomputes the checksum from scratch (builders, segment splitting).
    @inlinable public func fillChecksum(pseudoHeaderSum: UInt32) {
        bytes.setU16(Field.checksum, 0)
        bytes.setU16(Field.checksum, InternetChecksum.checksum(UnsafeRawBufferPointer(bytes), initial: pseudoHeaderSum))
    }

    // MARK: Setters (incremental checksum, RFC 1624)

    @inlinable public func setSourcePort(_ p: UInt16) { set16(Field.sourcePort, p) }
    @inlinable public func setDestinationPort(_ p: UInt16) { set16(Field.destinationPort, p) }
    @inlinable public func setSeq(_ s: SeqNumber) { set32(Field.seq, s.rawValue) }
    @inlinable public func setAck(_ s: SeqNumber) { set32(Field.ack, s.rawValue) }
    @inlinable public func setWindow(_ w: UInt16) { set16(Field.window, w) }
    /// Sets the flags byte (keeps the data offset nibble).
    @inlinable public func setFlags(_ f: TCPFlags) {
        let old = bytes.u16(Field.dataOffset)
        bytes[Field.flags] = f.rawValue
        fixChecksum(old: old, new: bytes.u16(Field.dataOffset))
    }

    /// Folds a change of a pseudo-header word (an address half) into the checksum, for NAT.
    @inlinable public func adjustChecksumForAddress(old: IPv4Address, new: IPv4Address) {
        bytes.setU16(Field.checksum, InternetChecksum.update(checksum, old: old.value, new: new.value))
    }

    /// The same for an IPv6 address (RFC 8200 §8.1: both addresses are in the pseudo-header).
    @inlinable public func adjustChecksumForAddress(old: IPv6Address, new: IPv6Address) {
        bytes.setU16(Field.checksum, InternetChecksum.update(checksum, old: old, new: new))
    }

    /// Writes a 16-bit word at `offset` inside the segment (options too) keeping the checksum.
    /// `offset` must be even-aligned relative to the segment start for RFC 1624 to apply
    /// directly; odd offsets are handled by updating the enclosing aligned words.
    @inlinable public func set16(_ offset: Int, _ v: UInt16) {
        if offset & 1 == 0 {
            let old = bytes.u16(offset)
            bytes.setU16(offset, v)
            fixChecksum(old: old, new: v)
        } else {
            setByte(offset, UInt8(v >> 8))
            setByte(offset + 1, UInt8(truncatingIfNeeded: v))
        }
    }
    @inlinable public func set32(_ offset: Int, _ v: UInt32) {
        if offset & 1 == 0 {
            let old = bytes.u32(offset)
            bytes.setU32(offset, v)
            bytes.setU16(Field.checksum, InternetChecksum.update(checksum, old: old, new: v))
        } else {
            set16(offset, UInt16(v >> 16))
            set16(offset + 2, UInt16(truncatingIfNeeded: v))
        }
    }
    /// Writes one byte keeping the checksum (via its aligned 16-bit word).
    @inlinable public func setByte(_ offset: Int, _ v: UInt8) {
        let wordStart = offset & ~1
        let hasPair = wordStart + 1 < bytes.count
        let old = hasPair ? bytes.u16(wordStart) : UInt16(bytes[wordStart]) << 8
        bytes[offset] = v
        let new = hasPair ? bytes.u16(wordStart) : UInt16(bytes[wordStart]) << 8
        fixChecksum(old: old, new: new)
    }
    @inlinable func fixChecksum(old: UInt16, new: UInt16) {
        bytes.setU16(Field.checksum, InternetChecksum.update(checksum, old: old, new: new))
    }
}
