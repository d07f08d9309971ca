#if canImport(Glibc)
import Glibc
#endif
import Engine
import Foundation
import Logging
import PacketIO
import Wire
import Synchronization

/// The data-plane loop: one thread that owns the engine, reads batches from the input
/// device (the TUN), lets the engine rewrite them, writes them to the output device (the raw
/// socket), records both sides when capturing, and expires flows. Other threads reach the
/// engine only through `perform`, which queues a closure that the loop runs between batches
/// (so the engine needs no lock).
///
/// With several TUN queues there is one loop per queue, each the shard of its engine
/// (`ShardedDataPlane`): a packet read on one queue whose flow another shard owns is handed to
/// that shard's inbox (and its loop woken through its eventfd); the owner processes it and
/// writes it on its own queue.
///
/// The engine's events (`EngineEvent`) are taken after each call into it and passed on: the
/// kernel path's changes to `KernelPathInstaller` (nftables runs on its own queue, never on
/// this thread; the outcome comes back as a command), the new-device SYNs and released
/// 4-tuples to the shards' `ShardRegistry`. Once a second the loop asks the installer to read
/// the kernel's counters of the flows it forwards.
///
/// Invariants: only the loop thread touches `engine`; every batch read is written (or
/// dropped by the engine, or handed to its owner shard) before the next read; `stop()` ends
/// the loop within one poll timeout (100 ms) and the loop closes nothing it did not open.
public final class DataPlane: @unchecked Sendable {
    public let engine: SpliceEngine
    private let input: any PacketDevice
    private let output: any PacketDevice
    private let capture: CaptureRecorder?
    private let logger: Logger
    private let wakeup: Int32
    private let commands = Mutex<[(SpliceEngine, PacketBatch) -> Void]>([])
    private let stopping = Atomic<Bool>(false)
    private let batch: PacketBatch
    private let generated: PacketBatch
    /// The other shards, when this loop is one of several (set before `start`).
    var peers: ShardPeers?
    /// Applies the kernel path's changes, when the engine hands flows to the kernel (set before `start`).
    var kernelPathInstaller: KernelPathInstaller?
    /// This shard's flow checkpoint, appended to after each call into the engine that changed
    /// a flow's durable facts (set before `start`; only the loop thread writes it).
    var checkpoint: FlowCheckpointFile?
    /// The checkpoint failed to write once (said once; flows go on, a restart may lose them).
    private var checkpointFailed = false
    /// A read of the kernel's counters for this shard is queued (`KernelPathInstaller.readCounters`).
    let kernelCountersQueued = Atomic<Bool>(false)
    /// How often the kernel's counters of handed-over flows are read (activity, `tsmp flows`).
    static let kernelCountersInterval: UInt64 = 1_000_000_000
    /// Packets other shards read for flows of this one; drained by the loop.
    private let inbox = Mutex<(packets: [HandedOver], bytes: Int)>(([], 0))
    private let inboxBatch: PacketBatch
    /// Packets handed to this shard that its full inbox refused.
    let inboxOverflow = Atomic<Int>(0)
    static let inboxLimitBytes = 16 << 20
    private var thread: Thread?
    private let finished = Mutex<[CheckedContinuation<Void, Never>]>([])
    private let done = Atomic<Bool>(false)
    /// Write failures of the devices, by errno, as the loop last saw them.
    public private(set) var lastError: String?

    public static let expiryInterval: UInt64 = 100_000_000 // 100 ms

    public convenience init(engine: SpliceEngine, input: any PacketDevice, output: any PacketDevice,
                            capture: PcapFileWriter? = nil, batchSize: Int = 64, logger: Logger) throws(SystemError) {
        try self.init(engine: engine, input: input, output: output,
                      recorder: capture.map { CaptureRecorder(writer: $0, logger: logger) }, batchSize: batchSize, logger: logger)
    }

    init(engine: SpliceEngine, input: any PacketDevice, output: any PacketDevice,
         recorder: CaptureRecorder?, batchSize: Int = 64, logger: Logger) throws(SystemError) {
        self.engine = engine
        self.input = input
        self.output = output
        self.capture = recorder
        self.logger = logger
        self.batch = PacketBatch(capacity: batchSize)
        self.inboxBatch = PacketBatch(capacity: batchSize)
        self.generated = PacketBatch(capacity: 256, maxPacket: 2048)
        self.wakeup = try Syscall.eventfd(initialValue: 0, nonBlocking: true)
    }

    deinit { try? Syscall.close(wakeup) }

    /// Starts the loop on its own thread.
    public func start() {
        let t = Thread { [self] in
            // What top -H and perf show. Applied only from the thread itself on Linux, and only
            // up to 15 bytes (longer names are refused by the kernel: the thread stays unnamed).
            Thread.current.name = self.engine.shard.count > 1 ? "tsmp-dp-\(self.engine.shard.index)" : "tsmp-dataplane"
            self.run()
        }
        thread = t
        t.start()
    }

    /// Asks the loop to stop; `waitUntilStopped` returns once it has.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        _ = try? Syscall.eventfdWrite(wakeup)
    }

    public func waitUntilStopped() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let already = finished.withLock { list -> Bool in
                if done.load(ordering: .acquiring) { return true }
                list.append(c)
                return false
            }
            if already { c.resume() }
        }
    }

    /// Runs `body` on the loop thread with the engine and returns its result.
    public func perform<T: Sendable>(_ body: @escaping @Sendable (SpliceEngine) -> T) async -> T {
        await performWithOutput { engine, _ in body(engine) }
    }

    /// Like `perform`, with a batch for packets the engine makes (a migration's first ACKs);
    /// the loop writes them right after `body` returns.
    public func performWithOutput<T: Sendable>(_ body: @escaping @Sendable (SpliceEngine, PacketBatch) -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            if done.load(ordering: .acquiring) {
                // The loop is gone: nobody else touches the engine, and nothing is written.
                c.resume(returning: body(engine, PacketBatch(capacity: 64, maxPacket: 2048)))
                return
            }
            commands.withLock {
                $0.append { [self] engine, out in
                    let result = body(engine, out)
                    // Before the answer leaves: e.g. other shards must know where a new device's SYN goes.
                    consumeEvents()
                    c.resume(returning: result)
                }
            }
            _ = try? Syscall.eventfdWrite(wakeup)
        }
    }

    /// Queues `command` for the loop thread without waiting for it (the kernel path's outcomes);
    /// dropped once the loop has stopped.
    func enqueue(_ command: @escaping @Sendable (SpliceEngine, PacketBatch) -> Void) {
        guard !done.load(ordering: .acquiring) else { return }
        commands.withLock { $0.append(command) }
        _ = try? Syscall.eventfdWrite(wakeup)
    }

    /// The engine's status and the packets the output device refused, read on the loop thread.
    public func status() async -> (engine: EngineStatus, outputWriteErrors: Int) {
        let output = UncheckedBox(self.output)
        return await perform { [self] engine in
            (currentStatus(engine), (output.value as? any WriteErrorCounting)?.writeErrors.total ?? 0)
        }
    }

    /// The engine's status with what the output device counts for it (segments a TUN merged
    /// before writing them). On the loop thread, or once it stopped.
    func currentStatus(_ engine: SpliceEngine) -> EngineStatus {
        var status = engine.status()
        status.segmentsCoalesced &+= (output as? any SegmentCoalescing)?.segmentsCoalesced ?? 0
        return status
    }

    private func run() {
        defer {
            finished.withLock { list in
                done.store(true, ordering: .releasing)
                for c in list { c.resume() }
                list.removeAll()
            }
            // Commands queued while stopping still get their answer.
            let pending = commands.withLock { q -> [(SpliceEngine, PacketBatch) -> Void] in let p = q; q.removeAll(); return p }
            for command in pending { command(engine, PacketBatch(capacity: 64, maxPacket: 2048)) }
        }
        var fds = [pollfd](repeating: pollfd(), count: 2)
        fds[0].fd = wakeup
        fds[0].events = Int16(POLLIN)
        fds[1].fd = input.pollDescriptor ?? -1
        fds[1].events = Int16(POLLIN)
        var lastExpiry = Syscall.monotonicNow()
        var lastKernelCounters = lastExpiry
        logger.info("data plane running")
        while !stopping.load(ordering: .acquiring) {
            do {
                // Migrations run timers (RTO, cut, deadline) finer than the expiry tick.
                let timeout: Int32 = engine.activeMigrationCount > 0 ? 5 : 100
                _ = try fds.withUnsafeMutableBufferPointer { try Syscall.poll($0, timeoutMilliseconds: timeout) }
                if fds[0].revents != 0 { _ = try? Syscall.eventfdRead(wakeup) }
                try runCommands()
                try drainInbox()
                // A bounded number of batches per wake-up so commands and expiry are not starved.
                for _ in 0..<64 {
                    batch.removeAll()
                    let n = try input.read(into: batch)
                    if n == 0 { break }
                    let now = Syscall.monotonicNow()
                    if let peers {
                        // A later fragment carries no ports to route it by: whole datagrams first.
                        engine.reassembleFragments(batch, now: now)
                        peers.route(batch, from: self, now: now)
                    }
                    try forward(batch, now: now)
                }
                try drainInbox()
                let now = Syscall.monotonicNow()
                if engine.activeMigrationCount > 0 {
                    generated.removeAll()
                    engine.runMigrationTimers(now: now, generated: generated)
                    consumeEvents()
                    try writeGenerated()
                }
                if now.nanoseconds &- lastExpiry.nanoseconds >= DataPlane.expiryInterval {
                    engine.expire(now: now)
                    consumeEvents()
                    lastExpiry = now
                }
                if let kernelPathInstaller, engine.kernelPathFlowCount > 0,
                   now.nanoseconds &- lastKernelCounters.nanoseconds >= Self.kernelCountersInterval {
                    kernelPathInstaller.readCounters(of: engine.kernelPathFlows(), for: self)
                    lastKernelCounters = now
                }
            } catch {
                logger.error("data plane I/O failed; stopping", metadata: ["error": "\(error)"])
                lastError = "\(error)"
                break
            }
        }
        logger.info("data plane stopped")
    }

    private func runCommands() throws(SystemError) {
        let pending = commands.withLock { q -> [(SpliceEngine, PacketBatch) -> Void] in
            guard !q.isEmpty else { return [] }
            let p = q
            q.removeAll(keepingCapacity: true)
            return p
        }
        for command in pending {
            generated.removeAll()
            command(engine, generated)
            consumeEvents()
            try writeGenerated()
        }
    }

    /// Passes on what the engine said (`EngineEvent`) since the last call, and appends its
    /// flows' changes to the checkpoint; on the loop thread.
    private func consumeEvents() {
        if checkpoint != nil && engine.hasCheckpointChanges { appendCheckpoint() }
        guard engine.hasEvents else { return }
        let shard = engine.shard.index
        for event in engine.takeEvents() {
            switch event {
            case .kernelPathEnter(let flows):
                if let kernelPathInstaller { kernelPathInstaller.enter(flows, for: self) } else { engine.kernelPathEnterFailed(flows.map(\.id)) }
            case .kernelPathLeave(let flows):
                kernelPathInstaller?.leave(flows, for: self)
            case .expectNewDeviceSyn(let id, let target, let original):
                peers?.registry.expect(id, shard: shard, target: target, original: original)
            case .newDeviceSynNoLongerAwaited(let id):
                peers?.registry.forget(id)
            case .released(let device, let original):
                peers?.registry.release(device: device, original: original, shard: shard)
            }
        }
    }

    /// One write per call into the engine (a batch, a command, a tick), compacted now and then.
    private func appendCheckpoint() {
        guard let checkpoint else { return }
        let records = engine.takeCheckpointRecords()
        do {
            try checkpoint.append(records)
            if checkpoint.wantsCompaction { try checkpoint.compact(flows: engine.checkpoints()) }
        } catch {
            guard !checkpointFailed else { return }
            checkpointFailed = true
            logger.error("the flow checkpoint could not be written: a restart may lose flows (said once)", metadata: ["error": "\(error)"])
        }
    }

    /// Rewrites the checkpoint as a snapshot of the flows now: the last thing a stop that keeps
    /// the flows does (the loop has stopped; nobody else touches the engine).
    func writeFinalCheckpoint() throws(FlowCheckpointFileError) {
        guard let checkpoint else { return }
        _ = engine.takeCheckpointRecords()
        try checkpoint.compact(flows: engine.checkpoints())
    }

    private func writeGenerated() throws(SystemError) {
        guard generated.count > 0 else { return }
        _ = try output.write(generated, 0..<generated.count)
        recordCapture(generated, direction: .outbound)
    }

    /// Records a batch in the capture, if there is one, with the migration phases the engine
    /// entered since (comments).
    private func recordCapture(_ batch: PacketBatch, direction: PacketDirection) {
        capture?.record(batch, direction: direction, engine: engine)
    }

    // MARK: Shards

    /// A packet another shard read for a flow of this one, with its offload metadata.
    struct HandedOver {
        var bytes: [UInt8]
        var offload: VirtioNetHeader
        /// For a new device's SYN: the migration the registry gave it to.
        var migration: MigrationID?
    }

    /// Tells this shard's engine which migration the SYN `packet` is for (on the loop thread,
    /// before the engine sees the packet).
    func assignNewDeviceSyn(_ packet: UnsafeRawBufferPointer, to migration: MigrationID) {
        guard let (source, destination, _) = HeaderPeek(packet).tcpEndpoints else { return }
        engine.assignNewDeviceSyn(device: source, original: destination, to: migration)
    }

    /// Queues a packet for this shard's loop (called from another shard's loop) and wakes it.
    /// False when the inbox is full (the packet is lost, as on a full queue).
    @discardableResult
    func handOver(_ packet: UnsafeMutableRawBufferPointer, offload: VirtioNetHeader, migration: MigrationID? = nil) -> Bool {
        let item = HandedOver(bytes: Array(packet), offload: offload, migration: migration)
        let (accepted, wasEmpty) = inbox.withLock { q -> (Bool, Bool) in
            guard q.bytes + item.bytes.count <= Self.inboxLimitBytes else { return (false, false) }
            let wasEmpty = q.packets.isEmpty
            q.packets.append(item)
            q.bytes += item.bytes.count
            return (true, wasEmpty)
        }
        guard accepted else { inboxOverflow.add(1, ordering: .relaxed); return false }
        if wasEmpty { _ = try? Syscall.eventfdWrite(wakeup) }
        return true
    }

    /// Processes what other shards handed over, a batch at a time (no routing: they are ours).
    private func drainInbox() throws(SystemError) {
        guard peers != nil else { return }
        let items = inbox.withLock { q -> [HandedOver] in
            guard !q.packets.isEmpty else { return [] }
            let p = q.packets
            q = ([], 0)
            return p
        }
        guard !items.isEmpty else { return }
        inboxBatch.removeAll()
        for item in items {
            if inboxBatch.isFull {
                try forward(inboxBatch, now: Syscall.monotonicNow())
                inboxBatch.removeAll()
            }
            guard inboxBatch.append(item.bytes) else { continue }
            if let mid = item.migration { item.bytes.withUnsafeBytes { assignNewDeviceSyn($0, to: mid) } }
            inboxBatch.offloads[inboxBatch.count - 1] = item.offload
        }
        if inboxBatch.count > 0 { try forward(inboxBatch, now: Syscall.monotonicNow()) }
    }

    /// Engine, then output, for one batch; captures record the input before it is rewritten.
    private func forward(_ batch: PacketBatch, now: Instant) throws(SystemError) {
        recordCapture(batch, direction: .inbound)
        generated.removeAll()
        engine.process(batch, now: now, generated: generated)
        consumeEvents()
        _ = try output.write(batch, 0..<batch.count)
        recordCapture(batch, direction: .outbound)
        try writeGenerated()
    }
}

/// Carries a non-Sendable reference into a closure that runs on the loop thread, the only
/// thread that uses it.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
