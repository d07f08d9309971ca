import Wire

/// Flows that outlive the process (issue "Survive a proxy restart", item 1): the engine gives
/// each flow's durable facts (`FlowCheckpoint`) for the checkpoint, and a restarted engine
/// adopts them: same id, NAT port, offsets, scales and options; the per-packet state is learned
/// again from the next segments, as for a flow back from the kernel path (`.resyncing`).
extension SpliceEngine {
    /// Every flow's durable facts, in id order: what a compacted checkpoint holds.
    public func checkpoints() -> [FlowCheckpoint] {
        table.slots.compactMap { $0.map { checkpoint(for: $0) } }.sorted { $0.id < $1.id }
    }

    /// One flow's durable facts, after one of its events; nil when it is gone.
    public func checkpoint(of id: FlowID) -> FlowCheckpoint? {
        table.slot(id: id).flatMap { table[slot: $0] }.map { checkpoint(for: $0) }
    }

    /// Whether flows changed their durable facts since the last `takeCheckpointRecords`
    /// (cheap: checked after every batch).
    public var hasCheckpointChanges: Bool { !checkpointChanges.isEmpty }

    /// The records to append for the flows whose durable facts changed (created, state, FIN,
    /// splice or rollback, kernel path, removed: `noteCheckpointChange`), in id order: a flow
    /// record, or "gone" for a flow no longer here. Per flow event, never per packet.
    public func takeCheckpointRecords() -> [UInt8] {
        guard !checkpointChanges.isEmpty else { return [] }
        var out: [UInt8] = []
        for id in checkpointChanges.sorted() {
            out += checkpoint(of: id).map(CheckpointCodec.record) ?? CheckpointCodec.gone(id)
        }
        checkpointChanges.removeAll(keepingCapacity: true)
        return out
    }

    /// Notes that flow `id` changed a durable fact (at the engine's choke points).
    func noteCheckpointChange(_ id: FlowID) {
        if recordsCheckpointChanges { checkpointChanges.insert(id) }
    }

    func checkpoint(for flow: Flow) -> FlowCheckpoint {
        var c = FlowCheckpoint(id: flow.id, device: IPEndpoint(flow.device), original: IPEndpoint(flow.original),
                               server: IPEndpoint(flow.server), natPort: flow.natPort, state: flow.state)
        c.seqOffsetToServer = flow.toServer.seqOffset
        c.seqOffsetToDevice = flow.toDevice.seqOffset
        c.tsOffsetToServer = flow.toServer.tsOffset
        c.tsOffsetToDevice = flow.toDevice.tsOffset
        c.streamStartToServer = flow.streamStartToServer
        c.streamStartToDevice = flow.streamStartToDevice
        c.finToServer = flow.toServer.finSeq
        c.finToDevice = flow.toDevice.finSeq
        c.deviceSyn = flow.deviceSyn
        c.serverSyn = flow.serverSyn
        c.serverViewOfDeviceShift = flow.serverViewOfDeviceShift
        c.deviceShiftOverride = flow.deviceShiftOverride
        c.deviceViewOfServerShift = flow.deviceViewOfServerShift
        c.deviceMSS = flow.deviceMSS
        c.deviceLacksSACK = flow.deviceLacksSACK
        c.deviceLacksTimestamps = flow.deviceLacksTimestamps
        c.deviceLacksECN = flow.deviceLacksECN
        c.inKernel = flow.kernelPath == .inKernel || flow.kernelPath == .leaving
        if let mid = flow.migration, let m = migrations[mid], !m.isAwaitingState {
            c.heldByMigration = true
            c.migrationID = mid
            c.migrationTarget = IPEndpoint(IPv4Endpoint(m.target.address, m.target.port ?? 0))
        }
        return c
    }

    /// What `adopt` did: the flows taken over, and each one refused with its reason.
    public struct Adoption: Sendable, Equatable {
        public var adopted: [FlowID] = []
        public var refused: [(id: FlowID, reason: String)] = []
        public init() {}
        public static func == (a: Adoption, b: Adoption) -> Bool {
            a.adopted == b.adopted && a.refused.map(\.id) == b.refused.map(\.id) && a.refused.map(\.reason) == b.refused.map(\.reason)
        }
    }

    /// Takes over flows a previous proxy checkpointed. A flow is refused (and its reason given)
    /// when it does not fit this engine: an address family it does not manage, a NAT port
    /// outside this shard's range or taken, an id another shard hands out, or a device-side
    /// 4-tuple already in the table. Call before the first packet; ids handed out later follow
    /// the highest adopted one. Flows the kernel forwarded stay in the kernel (the rewriting
    /// rules outlive the process); the others resync from their next segments.
    public func adopt(_ flows: [FlowCheckpoint], now: Instant) -> Adoption {
        var result = Adoption()
        for c in flows {
            guard case .v4(let deviceAddress) = c.device.address, case .v4(let originalAddress) = c.original.address,
                  case .v4(let serverAddress) = c.server.address else {
                result.refused.append((id: c.id, reason: "IPv6 flows are not managed yet"))
                continue
            }
            guard let local = shard.localID(global: c.id.rawValue) else {
                result.refused.append((id: c.id, reason: "its id belongs to another shard"))
                continue
            }
            guard table.count < table.maxFlows else {
                result.refused.append((id: c.id, reason: "the flow table is full"))
                continue
            }
            let device = IPv4Endpoint(deviceAddress, c.device.port)
            let original = IPv4Endpoint(originalAddress, c.original.port)
            guard table.slot(deviceKey: DeviceSideKey(device: device, original: original)) == nil,
                  table.slot(id: c.id) == nil else {
                result.refused.append((id: c.id, reason: "a flow with its device 4-tuple or id is already here"))
                continue
            }
            guard natPorts.claim(c.natPort) else {
                result.refused.append((id: c.id, reason: "NAT port \(c.natPort) is outside this shard's range or taken"))
                continue
            }
            var flow = Flow(id: c.id, device: device, original: original, server: IPv4Endpoint(serverAddress, c.server.port),
                            natPort: c.natPort, state: c.state, created: now, lastActivity: now)
            flow.toServer.seqOffset = c.seqOffsetToServer
            flow.toDevice.seqOffset = c.seqOffsetToDevice
            flow.toServer.tsOffset = c.tsOffsetToServer
            flow.toDevice.tsOffset = c.tsOffsetToDevice
            flow.toServer.finSeq = c.finToServer
            flow.toDevice.finSeq = c.finToDevice
            flow.streamStartToServer = c.streamStartToServer
            flow.streamStartToDevice = c.streamStartToDevice
            flow.deviceSyn = c.deviceSyn
            flow.serverSyn = c.serverSyn
            flow.serverViewOfDeviceShift = c.serverViewOfDeviceShift
            flow.deviceShiftOverride = c.deviceShiftOverride
            flow.deviceViewOfServerShift = c.deviceViewOfServerShift
            flow.deviceMSS = c.deviceMSS
            flow.deviceLacksSACK = c.deviceLacksSACK
            flow.deviceLacksTimestamps = c.deviceLacksTimestamps
            flow.deviceLacksECN = c.deviceLacksECN
            // In the kernel: counted from zero again, as the entries' counters are read next
            // (they count since the hand-over: the first read adds what the kernel forwarded).
            if c.inKernel { flow.forwardedByKernel() } else { flow.kernelPath = .resyncing }
            _ = table.insert(flow)
            if c.inKernel { kernelPathIDs.insert(c.id) }
            if c.heldByMigration {
                interruptedMigrations[c.id] = []
                reportInterrupted(c, device: device, now: now)
            }
            nextFlowID = max(nextFlowID, local + 1)
            result.adopted.append(c.id)
            logger.debug("flow adopted", metadata: [
                "flow.id": "\(c.id)", "flow.device": "\(device)", "flow.server": "\(flow.server)",
                "flow.nat_port": "\(c.natPort)", "flow.in_kernel": "\(c.inKernel)",
            ])
        }
        return result
    }
}
