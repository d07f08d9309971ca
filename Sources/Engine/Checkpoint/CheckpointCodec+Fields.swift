import Wire

/// The checkpoint's fields on the wire: big-endian integers, endpoints and SYN options written
/// a byte at a time, and read back bounds-checked (nil past the end, never a trap).
extension CheckpointCodec {
    struct Writer {
        var out: [UInt8] = []
        init() { out.reserveCapacity(128) }
        mutating func u8(_ v: UInt8) { out.append(v) }
        mutating func u16(_ v: UInt16) { uint(v) }
        mutating func u32(_ v: UInt32) { uint(v) }
        mutating func u64(_ v: UInt64) { uint(v) }
        /// Big-endian, a byte at a time (no temporary array per field).
        private mutating func uint<T: FixedWidthInteger & UnsignedInteger>(_ v: T) {
            var shift = T.bitWidth - 8
            while shift >= 0 {
                out.append(UInt8(truncatingIfNeeded: v >> shift))
                shift -= 8
            }
        }
        mutating func bytes(_ b: [UInt8]) { out += b }
        mutating func endpoint(_ e: IPEndpoint) {
            switch e.address {
            case .v4(let a): u8(4); u32(a.value)
            case .v6(let a): u8(6); u64(a.high); u64(a.low)
            }
            u16(e.port)
        }
        mutating func syn(_ s: SynOptions) {
            u16(s.mss ?? 0); u8(s.windowScale ?? 0xFF)
            u8((s.sackPermitted ? 1 : 0) | (s.timestamps ? 2 : 0) | (s.ecn ? 4 : 0))
        }
    }

    /// Bounds-checked reads: nil past the end, never a trap.
    struct Reader {
        let data: ArraySlice<UInt8>
        var at: Int
        init(_ bytes: ArraySlice<UInt8>) { data = bytes; at = bytes.startIndex }
        var isAtEnd: Bool { at >= data.endIndex }
        mutating func bytes(_ n: Int) -> [UInt8]? {
            guard n >= 0, data.endIndex - at >= n else { return nil }
            defer { at += n }
            return Array(data[at..<(at + n)])
        }
        mutating func u8() -> UInt8? { uint() }
        mutating func u16() -> UInt16? { uint() }
        mutating func u32() -> UInt32? { uint() }
        mutating func u64() -> UInt64? { uint() }
        /// Big-endian, in place (no array per field); nil past the end.
        private mutating func uint<T: FixedWidthInteger & UnsignedInteger>() -> T? {
            let n = T.bitWidth / 8
            guard data.endIndex - at >= n else { return nil }
            var v: T = 0
            for i in at..<(at + n) { v = v << 8 | T(data[i]) }
            at += n
            return v
        }
        mutating func endpoint() -> IPEndpoint? {
            let address: IPAddress
            switch u8() {
            case 4: guard let v = u32() else { return nil }; address = .v4(IPv4Address(v))
            case 6: guard let h = u64(), let l = u64() else { return nil }; address = .v6(IPv6Address(high: h, low: l))
            default: return nil
            }
            guard let port = u16() else { return nil }
            return IPEndpoint(address, port)
        }
        mutating func syn() -> SynOptions? {
            guard let mss = u16(), let scale = u8(), scale <= 14 || scale == 0xFF, let bits = u8(), bits & ~7 == 0
            else { return nil }
            var s = SynOptions()
            s.mss = mss == 0 ? nil : mss
            s.windowScale = scale == 0xFF ? nil : scale
            s.sackPermitted = bits & 1 != 0; s.timestamps = bits & 2 != 0; s.ecn = bits & 4 != 0
            return s
        }
    }
}
