/// Package-internal access to the bytes around a packet in its slot, for devices that put a
/// header in the headroom (the virtio-net header of a TUN opened with `IFF_VNET_HDR`).
///
/// Invariant: never reaches outside slot `i`; a prefix larger than the space in front of
/// the packet is a programming error (precondition), not a runtime condition.
extension PacketBatch {
    /// Slot `i` starting `prefix` bytes before the packet area (inside the headroom), to the
    /// end of the slot: a device reads `prefix` header bytes plus the packet into it.
    package func slotBuffer(_ i: Int, prefix: Int) -> UnsafeMutableRawBufferPointer {
        precondition(i < capacity && prefix >= 0 && prefix <= headroom)
        let start = i * slotSize + headroom - prefix
        return UnsafeMutableRawBufferPointer(rebasing: slab[start ..< (i + 1) * slotSize])
    }

    /// Packet `i` with the `prefix` bytes in front of it (a header written in the headroom).
    package func packet(_ i: Int, prefix: Int) -> UnsafeMutableRawBufferPointer {
        precondition(i < count && prefix >= 0 && prefix <= headroom + offsets[i])
        let start = i * slotSize + headroom + offsets[i] - prefix
        return UnsafeMutableRawBufferPointer(rebasing: slab[start ..< start + prefix + lengths[i]])
    }
}
