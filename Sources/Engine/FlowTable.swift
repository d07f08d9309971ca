import Wire

/// The device-side key of a flow: who the device is and whom it believes it talks to.
struct DeviceSideKey: Hashable, Sendable {
    var device: IPv4Endpoint
    var original: IPv4Endpoint
}

/// Flows in a slab of slots with a free list, indexed by device-side key, by NAT port and by
/// id. Invariant: a flow is in all three indexes or in none; a slot is either free (nil, on
/// the free list) or holds exactly one flow.
struct FlowTable {
    private(set) var slots: [Flow?] = []
    private var freeSlots: [Int] = []
    private var byDeviceKey: [DeviceSideKey: Int] = [:]
    private var byNATPort: [UInt16: Int] = [:]
    private var byID: [FlowID: Int] = [:]
    private(set) var count = 0

    func slot(deviceKey: DeviceSideKey) -> Int? { byDeviceKey[deviceKey] }
    func slot(natPort: UInt16) -> Int? { byNATPort[natPort] }
    func slot(id: FlowID) -> Int? { byID[id] }

    mutating func insert(_ flow: Flow) -> Int {
        let s: Int
        if let free = freeSlots.popLast() {
            s = free
            slots[s] = flow
        } else {
            s = slots.count
            slots.append(flow)
        }
        byDeviceKey[DeviceSideKey(device: flow.device, original: flow.original)] = s
        byNATPort[flow.natPort] = s
        byID[flow.id] = s
        count += 1
        return s
    }

    /// Points a second device-side key at slot `s` (the new device during a migration).
    mutating func setAlias(_ key: DeviceSideKey?, slot s: Int) {
        if let old = slots[s]?.aliasKey { byDeviceKey[old] = nil }
        slots[s]?.aliasKey = key
        if let key { byDeviceKey[key] = s }
    }

    /// Makes the alias the flow's device key (a migration spliced): the old key goes.
    mutating func promoteAlias(slot s: Int) {
        guard let flow = slots[s], let alias = flow.aliasKey else { return }
        byDeviceKey[DeviceSideKey(device: flow.device, original: flow.original)] = nil
        slots[s]!.device = alias.device
        slots[s]!.aliasKey = nil
        byDeviceKey[alias] = s
    }

    /// Removes the flow in slot `s` and returns it.
    @discardableResult
    mutating func remove(slot s: Int) -> Flow? {
        guard s < slots.count, let flow = slots[s] else { return nil }
        byDeviceKey[DeviceSideKey(device: flow.device, original: flow.original)] = nil
        if let alias = flow.aliasKey { byDeviceKey[alias] = nil }
        byNATPort[flow.natPort] = nil
        byID[flow.id] = nil
        slots[s] = nil
        freeSlots.append(s)
        count -= 1
        return flow
    }

    var slotCount: Int { slots.count }

    subscript(slot s: Int) -> Flow? {
        get { slots[s] }
        _modify { yield &slots[s] }
    }
}
