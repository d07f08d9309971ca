/// Big-endian (network order) loads and stores on raw buffers. Callers have already checked
/// bounds (the views' checked constructors); these use unaligned loads so any offset is fine.
extension UnsafeRawBufferPointer {
    func u8(_ at: Int) -> UInt8 { self[at] }
    func u16(_ at: Int) -> UInt16 {
        UInt16(self[at]) << 8 | UInt16(self[at + 1])
    }
    func u32(_ at: Int) -> UInt32 {
        UInt32(self[at]) << 24 | UInt32(self[at + 1]) << 16 | UInt32(self[at + 2]) << 8 | UInt32(self[at + 3])
    }
}

extension UnsafeMutableRawBufferPointer {
    func u8(_ at: Int) -> UInt8 { self[at] }
    func u16(_ at: Int) -> UInt16 { UnsafeRawBufferPointer(self).u16(at) }
    func u32(_ at: Int) -> UInt32 { UnsafeRawBufferPointer(self).u32(at) }
    func setU16(_ at: Int, _ v: UInt16) {
        self[at] = UInt8(v >> 8)
        self[at + 1] = UInt8(truncatingIfNeeded: v)
    }
    func setU32(_ at: Int, _ v: UInt32) {
        self[at] = UInt8(v >> 24)
        self[at + 1] = UInt8(truncatingIfNeeded: v >> 16)
        self[at + 2] = UInt8(truncatingIfNeeded: v >> 8)
        self[at + 3] = UInt8(truncatingIfNeeded: v)
    }
}
