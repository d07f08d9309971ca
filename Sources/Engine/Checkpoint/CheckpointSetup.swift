import Wire

extension EngineConfig {
    /// The fingerprint of the options a checkpointed flow depends on (`CheckpointCodec`'s
    /// `setup`): the NAT address and ports (a flow keeps its NAT port), the intercepted ports
    /// and the services (what a flow is, and where it goes), and the number of shards (which
    /// one holds a flow). A proxy started with other values of these refuses the checkpoint.
    /// FNV-1a over a canonical text: the same for every build and run (Swift's `Hasher` is
    /// seeded per process).
    public func checkpointSetup(shards: Int) -> UInt64 {
        let text = "nat=\(nat);ports=\(natPorts);intercepts=\(intercepts.map(\.description).joined(separator: ","));"
            + "services=\(services.map(\.description).joined(separator: ","));shards=\(shards)"
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
