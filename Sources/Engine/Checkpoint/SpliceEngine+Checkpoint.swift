import Wire

/// Flows that outlive the process (issue "Survive a proxy restart", item 1): the engine gives
/// each flow's durable facts (`FlowCheckpoint`) for the checkpoint, and a restarted engine
/// adopts them: same id, NAT port, offsets, scales and options; the per-packet state is learned
/// again from the next segments, as for a flow back from the kernel path (`.resyncing`).
extension SpliceEngine {
    /// Every flow's durable facts, in id order, with the bytes migrations hold: what a
    /// compacted checkpoint holds. Changes nothing: a held record appended after a snapshot
    /// may repeat bytes the snapshot has, which reading takes (`CheckpointCodec`).
    public func checkpoints() -> [FlowCheckpoint] {
        let all = table.slots.compactMap { $0.map { flow -> FlowCheckpoint in
            var c = checkpoint(for: flow)
            if c.heldByMigration, let copy = flow.inFlight {
                c.held = HeldBytes(start: copy.start, bytes: copy.bytes(from: copy.start, length: copy.count) ?? [])
            }
            return c
        } }
        return all.sorted { $0.id < $1.id }
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
    /// record, or "gone" for a flow no longer here. Per flow event, never per packet, except
    /// while a migration holds a flow: then the bytes it holds that the checkpoint lacks follow
    /// its record ("held"), before the proxy acknowledges them to the server.
    public func takeCheckpointRecords() -> [UInt8] {
        guard !checkpointChanges.isEmpty else { return [] }
        var out: [UInt8] = []
        for id in checkpointChanges.sorted() {
            guard let slot = table.slot(id: id), let flow = table[slot: slot] else {
                out += CheckpointCodec.gone(id)
                continue
            }
            let c = checkpoint(for: flow)
            out += CheckpointCodec.record(c)
            if c.heldByMigration, let mid = c.migrationID, let copy = flow.inFlight { out += heldRecords(mid, copy) }
        }
        checkpointChanges.removeAll(keepingCapacity: true)
        return out
    }

    /// The "held" records of what migration `mid` holds past what the checkpoint has.
    private func heldRecords(_ mid: MigrationID, _ copy: InFlightCopy) -> [UInt8] {
        guard let m = migrations[mid] else { return [] }
        var from = m.checkpointedCopyEnd ?? copy.start
        if from.lessThan(copy.start) || from.greaterThan(copy.end) { from = copy.start }
        migrations[mid]?.checkpointedCopyEnd = copy.end
        let n = Int(from.distance(to: copy.end))
        guard n > 0, let bytes = copy.bytes(from: from, length: n) else { return [] }
        return CheckpointCodec.held(m.flowID, migration: mid, start: from, bytes: bytes[...])
    }

    /// Notes that flow `id` changed a durable fact (at the engine's choke points).
    func noteCheckpointChange(_ id: FlowID) {
        if recordsCheckpointChanges { checkpointChanges.insert(id) }
    }

    func checkpoint(for flow: Flow) -> FlowCheckpoint {
        var c = FlowCheckpoint(id: flow.id, device: flow.device, original: flow.original,
                               server: flow.server, natPort: flow.natPort, state: flow.state)
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
        if let mid = flow.migration, let m = migrations[mid], let freeze = m.freeze {
            c.heldByMigration = true
            c.migrationID = mid
            c.migrationTarget = IPEndpoint(m.target.address, m.target.port ?? 0)
            var z = CheckpointedFreeze(forwardedToDeviceEnd: freeze.forwardedToDeviceEnd,
                                       forwardedToServerEnd: freeze.forwardedToServerEnd,
                                       serverAckServerView: freeze.serverAckServerView)
            z.lastTSvalToServer = freeze.lastTSvalToServer
            z.serverFinSeq = freeze.serverFinSeq
            if let h = freeze.newDevice {
                z.newDevice = h.endpoint
                z.newDeviceSentData = h.next.map { $0 != h.isn + 1 } ?? false
            }
            c.freeze = z
        } else if !migrations.isEmpty, let m = migrations.values.first(where: { $0.flowID == flow.id && $0.isAwaitingState }) {
            c.migrationID = m.id
            c.migrationTarget = IPEndpoint(m.target.address, m.target.port ?? 0)
        }
        return c
    }

    /// What `adopt` did: the flows taken over, and each one refused with its reason.
    public struct Adoption: Sendable, Equatable {
        public var adopted: [FlowID] = []
        public var refused: [(id: FlowID, reason: String)] = []
        /// Adopted flows whose migration the stop interrupted: going back to the old device
        /// (`SpliceEngine+RestoredMigration`), or to be reset (`SpliceEngine+InterruptedMigration`).
        public var rollingBack: [FlowID] = []
        public var resetting: [FlowID] = []
        /// The new devices of those migrations, refused for a while (give them to the other
        /// shards: `refuseNewDevices`).
        public var newDeviceRefusals: [RefusedAfterRestart] = []
        public init() {}
        public static func == (a: Adoption, b: Adoption) -> Bool {
            a.adopted == b.adopted && a.refused.map(\.id) == b.refused.map(\.id) && a.refused.map(\.reason) == b.refused.map(\.reason)
                && a.rollingBack == b.rollingBack && a.resetting == b.resetting
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
        adoptionRefusals = []
        for c in flows {
            guard c.device.family == c.original.family else {
                result.refused.append((id: c.id, reason: "its device side mixes IPv4 and IPv6 (\(c.device) to \(c.original))"))
                continue
            }
            guard config.natAddress(c.server.family) != nil else {
                result.refused.append((id: c.id, reason: "an IPv6 flow, and this proxy has no IPv6 --nat address"))
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
            let device = c.device, original = c.original
            guard table.slot(deviceKey: DeviceSideKey(device: device, original: original)) == nil,
                  table.slot(id: c.id) == nil else {
                result.refused.append((id: c.id, reason: "a flow with its device 4-tuple or id is already here"))
                continue
            }
            guard natPorts.claim(c.natPort) else {
                result.refused.append((id: c.id, reason: "NAT port \(c.natPort) is outside this shard's range or taken"))
                continue
            }
            var flow = Flow(id: c.id, device: device, original: original, server: c.server,
                            natPort: c.natPort, state: c.state, created: now, lastActivity: now)
            // Not in the checkpoint: learned again from the device's next segment.
            flow.serverFlowLabel = Flow.flowLabelUnknown
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
            let slot = table.insert(flow)
            if c.inKernel { kernelPathIDs.insert(c.id) }
            if !c.heldByMigration, c.migrationID != nil {
                reportInterrupted(c, device: device, now: now)
            } else if c.heldByMigration {
                if canRestore(c) {
                    restoreMigration(c, slot: slot, now: now)
                    result.rollingBack.append(c.id)
                } else {
                    result.resetting.append(c.id)
                    interruptedMigrations[c.id] = []
                    reportInterrupted(c, device: device, now: now)
                    refuseNewDevice(of: c, original: original, now: now)
                }
            }
            nextFlowID = max(nextFlowID, local + 1)
            result.adopted.append(c.id)
            logger.debug("flow adopted", metadata: [
                "flow.id": "\(c.id)", "flow.device": "\(device)", "flow.server": "\(flow.server)",
                "flow.nat_port": "\(c.natPort)", "flow.in_kernel": "\(c.inKernel)",
            ])
        }
        result.newDeviceRefusals = adoptionRefusals
        adoptionRefusals = []
        return result
    }
}
