import Wire

/// The device-side key of a flow: who the device is and whom it believes it talks to.
struct DeviceSideKey: Hashable, Sendable {
    var device: IPEndpoint
    var original: IPEndpoint
}

/// Flows in a slab of slots with a free list, indexed by device-side key, by NAT port and by
/// id. Invariant: a flow is in all three indexes or in none; a slot is either free (nil, on
/// the free list) or holds exactly one flow.
///
/// The indexes hold slot numbers only (4 bytes each), never keys: the key of an entry is read
/// from the flow it points at. Device keys and ids go through open-addressing tables
/// (`SlotIndex`), NAT ports through a flat array (there are at most 65,536): no hashing of
/// Swift dictionaries on the packet path, and about 20 bytes of index per flow.
struct FlowTable {
    private(set) var slots: [Flow?] = []
    private var freeSlots: [Int32] = []
    private var byDeviceKey = SlotIndex()
    private var byID = SlotIndex()
    /// Slot + 1 per NAT port (0: none); allocated with the first flow.
    private var byNATPort: [Int32] = []
    private(set) var count = 0
    /// The most flows the table will be asked to hold (the engine's limit, or its NAT ports).
    let maxFlows: Int
    /// Hash seed: a device can't choose ports that collide in every gateway's table.
    private let seed = UInt64.random(in: 1...UInt64.max) | 1

    init(maxFlows: Int = .max) {
        self.maxFlows = maxFlows
    }

    func slot(deviceKey: DeviceSideKey) -> Int? {
        // Fields are read through optional chaining: binding `slots[s]` would copy the record.
        byDeviceKey.find(hash: hash(deviceKey)) { s in
            if slots[s]?.device == deviceKey.device && slots[s]?.original == deviceKey.original { return true }
            return slots[s]?.hasAlias == true && slots[s]?.aliasKey == deviceKey
        }
    }
    func slot(natPort: UInt16) -> Int? {
        let i = Int(natPort)
        guard i < byNATPort.count, byNATPort[i] != 0 else { return nil }
        return Int(byNATPort[i] - 1)
    }
    func slot(id: FlowID) -> Int? {
        byID.find(hash: hash(id)) { slots[$0]?.id == id }
    }

    mutating func insert(_ flow: Flow) -> Int {
        let s: Int
        if let free = freeSlots.popLast() {
            s = Int(free)
            slots[s] = flow
        } else {
            s = slots.count
            // Grow by a quarter, not the doubling `append` would do: the slab is most of a
            // large table's memory, and half of it could sit empty after a doubling.
            if slots.count == slots.capacity {
                slots.reserveCapacity(max(slots.count + 1, min(max(64, slots.count + slots.count / 4), maxFlows)))
            }
            slots.append(flow)
        }
        if byNATPort.isEmpty { byNATPort = [Int32](repeating: 0, count: 65_536) }
        byNATPort[Int(flow.natPort)] = Int32(s + 1)
        count += 1
        addToIndexes(slot: s)
        return s
    }

    /// Points a second device-side key at slot `s` (the new device during a migration).
    mutating func setAlias(_ key: DeviceSideKey?, slot s: Int) {
        if let old = slots[s]?.aliasKey { byDeviceKey.remove(hash: hash(old), slot: s) }
        slots[s]?.aliasKey = key
        if let key { addDeviceKey(key, slot: s) }
    }

    /// Makes the alias the flow's device key (a migration spliced): the old key goes.
    mutating func promoteAlias(slot s: Int) {
        guard let flow = slots[s], let alias = flow.aliasKey else { return }
        byDeviceKey.remove(hash: hash(DeviceSideKey(device: flow.device, original: flow.original)), slot: s)
        byDeviceKey.remove(hash: hash(alias), slot: s)
        slots[s]!.device = alias.device
        // A new device of the other family reached the service through its address of that family.
        slots[s]!.original = alias.original
        slots[s]!.aliasKey = nil
        addDeviceKey(alias, slot: s)
    }

    /// Removes the flow in slot `s` and returns it.
    @discardableResult
    mutating func remove(slot s: Int) -> Flow? {
        guard s < slots.count, let flow = slots[s] else { return nil }
        byDeviceKey.remove(hash: hash(DeviceSideKey(device: flow.device, original: flow.original)), slot: s)
        if let alias = flow.aliasKey { byDeviceKey.remove(hash: hash(alias), slot: s) }
        byNATPort[Int(flow.natPort)] = 0
        byID.remove(hash: hash(flow.id), slot: s)
        slots[s] = nil
        freeSlots.append(Int32(s))
        count -= 1
        return flow
    }

    var slotCount: Int { slots.count }

    subscript(slot s: Int) -> Flow? {
        _read { yield slots[s] }
        _modify { yield &slots[s] }
    }

    // MARK: Index upkeep

    private mutating func addToIndexes(slot s: Int) {
        let flow = slots[s]!
        addDeviceKey(DeviceSideKey(device: flow.device, original: flow.original), slot: s)
        if let alias = flow.aliasKey { addDeviceKey(alias, slot: s) }
        if byID.needsGrowth { rebuildIDs() }
        byID.insert(hash: hash(flow.id), slot: s)
    }

    private mutating func addDeviceKey(_ key: DeviceSideKey, slot s: Int) {
        if byDeviceKey.needsGrowth { rebuildDeviceKeys() }
        byDeviceKey.insert(hash: hash(key), slot: s)
    }

    private mutating func rebuildDeviceKeys() {
        byDeviceKey = SlotIndex(capacityFor: byDeviceKey.live + 1)
        for (s, flow) in slots.enumerated() {
            guard let flow else { continue }
            byDeviceKey.insert(hash: hash(DeviceSideKey(device: flow.device, original: flow.original)), slot: s)
            if let alias = flow.aliasKey { byDeviceKey.insert(hash: hash(alias), slot: s) }
        }
    }

    private mutating func rebuildIDs() {
        byID = SlotIndex(capacityFor: byID.live + 1)
        for (s, flow) in slots.enumerated() {
            guard let flow else { continue }
            byID.insert(hash: hash(flow.id), slot: s)
        }
    }

    // MARK: Hashing (multiply-xorshift; seeded)

    private func mix(_ x: UInt64) -> UInt64 {
        var h = (x ^ seed) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 32)
    }

    private func hash(_ key: DeviceSideKey) -> UInt64 {
        let b = UInt64(key.device.port) << 16 | UInt64(key.original.port)
        if case .v4(let d) = key.device.address, case .v4(let o) = key.original.address {
            return mix(UInt64(d.value) << 32 | UInt64(o.value) ^ mix(b))
        }
        return mix(Self.fold(key.device.address) ^ mix(Self.fold(key.original.address) ^ mix(b)))
    }

    /// An address in 64 bits for hashing: an IPv6 address's halves mixed (its low half alone
    /// is often the same interface identifier on many networks).
    static func fold(_ address: IPAddress) -> UInt64 {
        switch address {
        case .v4(let a): UInt64(a.value)
        case .v6(let a): a.high &* 0x9E37_79B9_7F4A_7C15 ^ a.low ^ 1 << 63
        }
    }

    private func hash(_ id: FlowID) -> UInt64 { mix(id.rawValue) }
}

/// An open-addressing hash index of slot numbers with linear probing. Entries carry no keys:
/// `find` asks its caller whether the slot in a bucket is the one wanted. Buckets are
/// `Int32`: -1 empty, -2 deleted (a tombstone keeps probe chains intact), otherwise a slot.
///
/// Invariant: at most 3/4 of the buckets are used (live + tombstones), so a probe always ends
/// at an empty bucket; the capacity is a power of two.
struct SlotIndex {
    private var buckets: [Int32] = []
    private var mask = 0
    /// Live entries.
    private(set) var live = 0
    /// Live entries plus tombstones.
    private var used = 0

    init() {}

    /// Room for `entries` at most half full (tombstones are dropped by rebuilding).
    init(capacityFor entries: Int) {
        var n = 16
        while n < entries * 2 { n *= 2 }
        buckets = [Int32](repeating: -1, count: n)
        mask = n - 1
    }

    /// True when one more insert would pass the 3/4 bound.
    var needsGrowth: Bool { (used + 1) * 4 > buckets.count * 3 }

    func find(hash: UInt64, _ matches: (Int) -> Bool) -> Int? {
        guard !buckets.isEmpty else { return nil }
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let b = buckets[i]
            if b == -1 { return nil }
            if b >= 0 && matches(Int(b)) { return Int(b) }
            i = (i + 1) & mask
        }
    }

    /// Adds slot `s` under `hash` (the caller grows the index first when `needsGrowth`).
    mutating func insert(hash: UInt64, slot s: Int) {
        var i = Int(truncatingIfNeeded: hash) & mask
        while buckets[i] >= 0 { i = (i + 1) & mask }
        if buckets[i] == -1 { used += 1 }
        buckets[i] = Int32(s)
        live += 1
    }

    /// Removes the entry for slot `s` filed under `hash`, if there is one.
    mutating func remove(hash: UInt64, slot s: Int) {
        guard !buckets.isEmpty else { return }
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let b = buckets[i]
            if b == -1 { return }
            if b == Int32(s) {
                // A tombstone, unless the chain ends right after it (then it can be empty).
                if buckets[(i + 1) & mask] == -1 {
                    buckets[i] = -1
                    used -= 1
                } else {
                    buckets[i] = -2
                }
                live -= 1
                return
            }
            i = (i + 1) & mask
        }
    }
}
