import Wire

/// What the data plane asks an engine when flows are spread over several (one per TUN queue,
/// `ShardLayout`): whether a device-side 4-tuple is its own, and which new-device SYNs its
/// migrations wait for (another shard may read them and must hand them over).
extension SpliceEngine {
    /// True when this engine holds the 4-tuple: a flow's device key, a migration's new device,
    /// or a key a migration retired (whose late segments it absorbs).
    public func holds(device: IPv4Endpoint, original: IPv4Endpoint) -> Bool {
        let key = DeviceSideKey(device: device, original: original)
        return table.slot(deviceKey: key) != nil || retiredKeys[key] != nil
    }

    /// The SYN migration `id` waits for: from `target` (its port, once known) to `original`
    /// (the flow's destination as its device sees it). Nil once claimed, or when the migration
    /// is no longer running toward a new device.
    public func awaitedNewDevice(_ id: MigrationID) -> (target: MigrationTarget, original: IPv4Endpoint)? {
        if let w = awaitingState[id], w.pendingSyn == nil, let slot = table.slot(id: w.flowID), let flow = table[slot: slot] {
            return (w.target, flow.original)
        }
        guard let m = migrations[id], m.newDevice == nil, !m.senderTowardOldDevice,
              let slot = table.slot(id: m.flowID), let flow = table[slot: slot] else { return nil }
        return (m.target, flow.original)
    }
}
