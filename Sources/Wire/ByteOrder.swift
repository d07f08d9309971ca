/// Big-endian (network order) loads and stores on raw buffers. Callers have already checked
/// bounds (the views' checked constructors); these use unaligned loads so any offset is fine.
/// One load or store each (not one per byte): they sit on every packet's path.
extension UnsafeRawBufferPointer {
    @inlinable func u8(_ at: Int) -> UInt8 { self[at] }
    @inlinable func u16(_ at: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }
    @inlinable func u32(_ at: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable func u8(_ at: Int) -> UInt8 { self[at] }
    @inlinable func u16(_ at: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }
    @inlinable func u32(_ at: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }
    @inlinable func setU16(_ at: Int, _ v: UInt16) {
        storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt16.self)
    }
    @inlinable func setU32(_ at: Int, _ v: UInt32) {
        storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt32.self)
    }
}

extension UnsafeRawBufferPointer {
    @inlinable func u64(_ at: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable func u64(_ at: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self))
    }
    @inlinable func setU64(_ at: Int, _ v: UInt64) {
        storeBytes(of: v.bigEndian, toByteOffset: at, as: UInt64.self)
    }
}
