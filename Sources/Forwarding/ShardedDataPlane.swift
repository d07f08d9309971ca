import Engine
import Logging
import PacketIO
import Wire

/// The data plane over one or several TUN queues (IFF_MULTI_QUEUE): one `DataPlane` loop and
/// one `SpliceEngine` per queue, flows sharded as `ShardLayout` says, packets read on the
/// wrong queue handed to their owner (`ShardPeers`). The control endpoints reach the engines
/// only through this (`EngineAccess`): ids say which shard to ask, listings and counters are
/// merged. With one queue it is exactly the single loop of before.
public final class ShardedDataPlane: @unchecked Sendable {
    /// Why the data plane cannot run as asked (the service reports it as its own failure).
    public struct Refused: Error, CustomStringConvertible {
        public let description: String
    }

    public let planes: [DataPlane]
    public let layout: ShardLayout
    let peers: ShardPeers?
    /// Applies the kernel path's changes off the packet threads, for every shard.
    let installer: KernelPathInstaller?

    /// Flows taken over from the previous proxy's checkpoint (`checkpoints`), and those refused.
    public private(set) var adoption = SpliceEngine.Adoption()

    /// One shard per `(input, output)` pair; each engine gets its share of the NAT ports and
    /// of the flow and in-flight limits. With `checkpoints`, each shard first adopts the flows
    /// its previous self left (with that layout's seed, so every flow stays with the shard
    /// that holds its NAT port), then keeps its own checkpoint file.
    public init(config: EngineConfig, queues: [(input: any PacketDevice, output: any PacketDevice)],
                capture: PcapFileWriter? = nil, batchSize: Int = 64, kernelPath: KernelPath? = nil,
                checkpoints: FlowCheckpoints? = nil, logger: Logger) throws {
        let count = queues.count
        if let checkpoints, checkpoints.paths.count != count {
            throw Refused(description: "\(checkpoints.paths.count) checkpoint files for \(count) queues")
        }
        let seed = checkpoints?.previousSeed ?? (count > 1 ? UInt64.random(in: 0...UInt64.max) : 0)
        guard let layout = ShardLayout(index: 0, count: count, natPorts: config.natPorts, seed: seed) else {
            throw Refused(description: "cannot run \(count) queues: the NAT port range \(config.natPorts) must give each at least one port")
        }
        self.layout = layout
        var shardConfig = config
        if count > 1 {
            shardConfig.limits.maxFlows = max(1, (config.limits.maxFlows + count - 1) / count)
            shardConfig.limits.inFlightTotal = config.limits.inFlightTotal / count
        }
        let recorder = capture.map { CaptureRecorder(writer: $0, logger: logger) }
        let installer = kernelPath.map { KernelPathInstaller(kernelPath: $0, logger: logger) }
        self.installer = installer
        var planes: [DataPlane] = []
        for (i, q) in queues.enumerated() {
            let engine = SpliceEngine(config: shardConfig, shard: layout.shard(i),
                                      logger: Logger(label: count > 1 ? "tsmp.engine.\(i)" : "tsmp.engine"))
            let plane = try DataPlane(engine: engine, input: q.input, output: q.output, recorder: recorder,
                                      batchSize: batchSize, logger: logger)
            plane.kernelPathInstaller = installer
            if let checkpoints {
                if i < checkpoints.previous.count {
                    let adopted = engine.adopt(checkpoints.previous[i].flows, now: Syscall.monotonicNow())
                    adoption.adopted += adopted.adopted
                    adoption.refused += adopted.refused
                    adoption.rollingBack += adopted.rollingBack
                    adoption.resetting += adopted.resetting
                    adoption.newDeviceRefusals += adopted.newDeviceRefusals
                }
                engine.recordsCheckpointChanges = true
                do {
                    plane.checkpoint = try FlowCheckpointFile(path: checkpoints.paths[i], setup: checkpoints.setup,
                                                              shard: CheckpointCodec.Shard(layout.shard(i)), flows: engine.checkpoints())
                } catch {
                    throw Refused(description: "\(error)")
                }
            }
            planes.append(plane)
        }
        self.planes = planes
        if count > 1 && !adoption.newDeviceRefusals.isEmpty {
            for plane in planes { plane.engine.refuseNewDevices(adoption.newDeviceRefusals) }
        }
        if count > 1 {
            let peers = ShardPeers(layout: layout, nat: config.nat, nat6: config.nat6)
            peers.connect(planes)
            self.peers = peers
        } else {
            self.peers = nil
        }
    }

    public func start() { for p in planes { p.start() } }

    /// Each shard's checkpoint rewritten as a snapshot of its flows now, after `stop` and
    /// `waitUntilStopped` (a stop that keeps the flows for the next proxy). Returns the failures.
    public func writeFinalCheckpoints() -> [String] {
        planes.compactMap { p in
            do { try p.writeFinalCheckpoint(); return nil } catch { return "\(error)" }
        }
    }

    public func stop() { for p in planes { p.stop() } }

    public func waitUntilStopped() async {
        for p in planes { await p.waitUntilStopped() }
        await installer?.drain()
        peers?.disconnect()
    }

    /// The merged status and the packets the outputs refused (read on each loop thread).
    public func status() async -> (engine: EngineStatus, outputWriteErrors: Int) {
        var parts: [EngineStatus] = []
        var writeErrors = 0
        for p in planes {
            let (s, w) = await p.status()
            parts.append(s)
            writeErrors += w
        }
        return (merged(parts), writeErrors)
    }

    /// The merged status once every loop has stopped (nobody else touches the engines then).
    public func finalStatus() -> EngineStatus {
        merged(planes.map { $0.currentStatus($0.engine) })
    }

    private func merged(_ parts: [EngineStatus]) -> EngineStatus {
        var status = EngineStatus.sum(parts)
        let overflow = planes.reduce(0) { $0 + $1.inboxOverflow.load(ordering: .relaxed) }
        if overflow > 0 { status.drops["shardInboxFull", default: 0] &+= UInt64(overflow) }
        return status
    }

    private func plane(of id: UInt64) -> DataPlane { planes[layout.shard(ofID: id) % planes.count] }
}

extension ShardedDataPlane: EngineAccess {
    public func listing() async -> FlowListing {
        var flows: [FlowSummary] = []
        var parts: [EngineStatus] = []
        for p in planes {
            let l = await p.listing()
            flows += l.flows
            parts.append(l.status)
        }
        return FlowListing(flows: flows.sorted { $0.id < $1.id }, status: merged(parts))
    }

    public func engineStatus() async -> EngineStatus {
        var parts: [EngineStatus] = []
        for p in planes { parts.append(await p.engineStatus()) }
        return merged(parts)
    }

    public func startMigrations(_ flows: [FlowID], to target: MigrationTarget, deadline: Duration) async -> [MigrationStartResult] {
        var results = [MigrationStartResult?](repeating: nil, count: flows.count)
        let groups = Dictionary(grouping: flows.indices) { layout.shard(of: flows[$0]) % planes.count }
        for (shard, indices) in groups.sorted(by: { $0.key < $1.key }) {
            for (i, r) in await startMigrations(indices.map { ($0, flows[$0]) }, on: planes[shard], to: target, deadline: deadline) {
                results[i] = r
            }
        }
        return results.map { $0! }
    }

    /// Starts the migrations of `flows` (all of `plane`'s shard). The engine must see every
    /// packet of a migrating flow, so a flow the kernel forwards (or may: its hand-over is not
    /// confirmed yet) is taken back first, through the installer's queue, and its migration
    /// started on the loop's next turn; a flow handed over meanwhile is taken back again (at
    /// most twice, then its refusal says why).
    private func startMigrations(_ flows: [(index: Int, flow: FlowID)], on plane: DataPlane, to target: MigrationTarget,
                                 deadline: Duration) async -> [(Int, MigrationStartResult)] {
        var results: [(Int, MigrationStartResult)] = []
        var pending = flows
        var left: (ids: [FlowID], lastCounters: [KernelPathCounters]) = ([], [])
        for attempt in 0..<3 {
            let last = attempt == 2, leftNow = left, pendingNow = pending
            let (answers, inKernel) = await plane.performWithOutput { engine, out in
                let now = Syscall.monotonicNow()
                if !leftNow.ids.isEmpty { engine.kernelPathLeft(leftNow.ids, lastCounters: leftNow.lastCounters, now: now) }
                var answers: [(Int, MigrationStartResult)] = []
                var inKernel: [(index: Int, rule: KernelPathFlow)] = []
                for (i, flow) in pendingNow {
                    if !last, let rule = engine.kernelPathFlow(flow) { inKernel.append((i, rule)); continue }
                    switch engine.startMigration(flow: flow, to: target, deadline: deadline, now: now, generated: out) {
                    case .success(let id): answers.append((i, MigrationStartResult(flow: flow, migration: id, error: nil)))
                    case .failure(let refusal): answers.append((i, MigrationStartResult(flow: flow, migration: nil, error: refusal.description)))
                    }
                }
                return (answers, inKernel)
            }
            results += answers
            guard !inKernel.isEmpty else { break }
            // If this fails, the engine refuses to migrate a flow the kernel still forwards; the answer says why.
            left = await installer?.takeBack(Array(Set(inKernel.map(\.rule)))) ?? ([], [])
            pending = inKernel.map { ($0.index, $0.rule.id) }
        }
        return results
    }

    public func bindMigrationSourcePort(_ port: UInt16, to migration: MigrationID) async -> Result<Void, MigrationRefusal> {
        await plane(of: migration.rawValue).perform { engine in engine.bindMigrationSourcePort(port, to: migration) }
    }

    public func reports(_ ids: [MigrationID]) async -> [MigrationReport] {
        var found: [MigrationID: MigrationReport] = [:]
        let groups = Dictionary(grouping: ids) { layout.shard(of: $0) % planes.count }
        for (shard, mine) in groups.sorted(by: { $0.key < $1.key }) {
            for r in await planes[shard].reports(mine) { found[r.id] = r }
        }
        return ids.compactMap { found[$0] }
    }
}
