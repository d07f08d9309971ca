/// The Internet checksum: one's-complement sum of 16-bit words (RFC 1071), and its
/// incremental update when a field changes (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
public enum InternetChecksum {
    /// One's-complement sum (not complemented, folded to 16 bits) of `bytes`, starting from
    /// `initial`. An odd trailing byte is padded with zero.
    @inlinable
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt16 {
        var acc = UInt64(initial)
        let n = bytes.count
        var i = 0
        // Wide steps: the sum of big-endian 16-bit words equals the byte-swapped sum of
        // native words, so add native 32-bit halves and fix the order at the end.
        if let base = bytes.baseAddress {
            var wide: UInt64 = 0
            // 64 bytes per round as 16-bit lanes widened into 32-bit lanes (vector adds, no carry
            // chain). A lane gains at most 65,535 per round: folded out every 16,384 rounds
            // (1 MiB) it can't overflow.
            var acc0 = SIMD16<UInt32>(), acc1 = SIMD16<UInt32>()
            var rounds = 0
            while i + 64 <= n {
                let v0 = base.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt16>.self)
                let v1 = base.loadUnaligned(fromByteOffset: i + 32, as: SIMD16<UInt16>.self)
                acc0 &+= SIMD16<UInt32>(truncatingIfNeeded: v0)
                acc1 &+= SIMD16<UInt32>(truncatingIfNeeded: v1)
                i += 64
                rounds += 1
                if rounds == 16_384 || i + 64 > n {
                    for k in 0..<16 { wide &+= UInt64(acc0[k]) &+ UInt64(acc1[k]) }
                    acc0 = SIMD16<UInt32>()
                    acc1 = SIMD16<UInt32>()
                    rounds = 0
                }
            }
            while i + 8 <= n {
                let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                wide &+= w & 0xFFFF_FFFF
                wide &+= w >> 32
                i += 8
            }
            while wide >> 32 != 0 { wide = (wide & 0xFFFF_FFFF) &+ (wide >> 32) }
            var folded = UInt32(truncatingIfNeeded: wide)
            folded = (folded & 0xFFFF) &+ (folded >> 16)
            folded = (folded & 0xFFFF) &+ (folded >> 16)
            // Native 16-bit sum -> network order (a byte swap on little-endian hosts only).
            acc &+= UInt64(UInt16(bigEndian: UInt16(truncatingIfNeeded: folded)))
        }
        while i + 1 < n {
            acc &+= UInt64(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]))
            i += 2
        }
        if i < n { acc &+= UInt64(UInt16(bytes[i]) << 8) }
        while acc >> 16 != 0 { acc = (acc & 0xFFFF) &+ (acc >> 16) }
        return UInt16(acc)
    }

    /// The checksum field value for `bytes` (complement of the sum).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt16 {
        ~sum(bytes, initial: initial)
    }

    /// RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from `old` to `new`.
    @inlinable
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var acc = UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        return ~UInt16(acc)
    }

    /// RFC 1624 for a 32-bit field (two 16-bit words).
    @inlinable
    public static func update(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        var acc = UInt32(~checksum)
        acc &+= UInt32(~UInt16(truncatingIfNeeded: old >> 16)) &+ UInt32(~UInt16(truncatingIfNeeded: old))
        acc &+= (new >> 16) &+ (new & 0xFFFF)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        acc = (acc & 0xFFFF) &+ (acc >> 16)
        return ~UInt16(acc)
    }

    /// RFC 1624 for a 128-bit field (an IPv6 address in a pseudo-header, RFC 8200 §8.1): eight
    /// words at once. The complement of each old word is 0xFFFF minus it, so their sum is
    /// 8 x 0xFFFF minus the old words' sum (never negative).
    @inlinable
    public static func update(_ checksum: UInt16, old: IPv6Address, new: IPv6Address) -> UInt16 {
        var acc = UInt64(~checksum) &+ 8 &* 0xFFFF &- UInt64(old.wordSum) &+ UInt64(new.wordSum)
        while acc >> 16 != 0 { acc = (acc & 0xFFFF) &+ (acc >> 16) }
        return ~UInt16(acc)
    }

    /// Adds two one's-complement partial sums.
    @inlinable
    public static func add(_ a: UInt32, _ b: UInt32) -> UInt32 {
        var acc = UInt64(a) + UInt64(b)
        while acc >> 16 != 0 { acc = (acc & 0xFFFF) &+ (acc >> 16) }
        return UInt32(acc)
    }
}
