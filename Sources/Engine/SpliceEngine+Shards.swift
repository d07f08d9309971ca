import Wire

/// What the data plane asks an engine when flows are spread over several (one per TUN queue,
/// `ShardLayout`): whether a device-side 4-tuple is its own, and which new-device SYNs its
/// migrations wait for (another shard may read them and must hand them over).
extension SpliceEngine {
    /// True when this engine holds the 4-tuple: a flow's device key, a migration's new device,
    /// or a key a migration retired (whose late segments it absorbs).
    public func holds(device: IPEndpoint, original: IPEndpoint) -> Bool {
        let key = DeviceSideKey(device: device, original: original)
        return table.slot(deviceKey: key) != nil || retiredKeys[key] != nil
    }
}
