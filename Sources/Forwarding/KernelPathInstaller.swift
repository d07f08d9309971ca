import Dispatch
import Engine
import Logging
import PacketIO
import Synchronization

/// Applies the kernel path's changes off the packet threads: nftables transactions (a flow
/// handed to the kernel or taken back) and the once-a-second read of the kernel's counters
/// (a netlink dump and its JSON parsing) run on one serial queue of their own, shared by the
/// shards. A shard's loop posts the engine's `kernelPathEnter`/`kernelPathLeave` events here
/// and goes on with its packets; the outcome comes back to that shard by its command queue
/// (`DataPlane.enqueue`), where the engine is told (`kernelPathEntered`, `kernelPathLeft`,
/// `kernelPathEnterFailed`, `kernelPathCounters`).
///
/// Invariants: jobs run one at a time in the order posted, so a flow's rewriting is removed
/// after it was installed, and a shard hears of an installation before of the removal that
/// follows it; a flow whose hand-over the engine refuses on confirmation has its rewriting
/// removed again; this never touches an engine itself.
final class KernelPathInstaller: Sendable {
    let kernelPath: KernelPath
    private let queue = DispatchQueue(label: "tsmp.kernel-path")
    private let logger: Logger
    private let conntrackWarned = Atomic<Bool>(false)

    init(kernelPath: KernelPath, logger: Logger) {
        self.kernelPath = kernelPath
        self.logger = logger
    }

    /// Installs the flows' rewriting, then tells `plane`'s engine (or that it failed).
    func enter(_ flows: [KernelPathFlow], for plane: DataPlane) {
        guard !flows.isEmpty else { return }
        queue.async { [self] in
            let ids = flows.map(\.id)
            do {
                try kernelPath.enter(flows)
                logger.debug("flows handed to the kernel path", metadata: ["flows": "\(ids.map(\.description).joined(separator: ","))"])
                if let error = kernelPath.liberalTracking(of: flows), !conntrackWarned.exchange(true, ordering: .relaxed) {
                    logger.warning("could not relax the gateway's connection tracking of kernel-path flows: a firewall here that drops `ct state invalid` may drop them when the proxy takes them back (said once)",
                                   metadata: ["error": "\(error)"])
                }
                plane.enqueue { engine, _ in
                    let refused = engine.kernelPathEntered(ids, now: Syscall.monotonicNow())
                    if !refused.isEmpty { self.leave(refused, for: plane) }
                }
            } catch {
                logger.warning("could not hand flows to the kernel path", metadata: ["flows": "\(flows.count)", "error": "\(error)"])
                plane.enqueue { engine, _ in engine.kernelPathEnterFailed(ids) }
            }
        }
    }

    /// Removes the flows' rewriting, then tells `plane`'s engine; on failure the engine keeps
    /// them as in the kernel.
    func leave(_ flows: [KernelPathFlow], for plane: DataPlane) {
        guard !flows.isEmpty else { return }
        queue.async { [self] in
            guard removed(flows) else { return }
            let ids = flows.map(\.id)
            plane.enqueue { engine, _ in engine.kernelPathLeft(ids, now: Syscall.monotonicNow()) }
        }
    }

    /// Removes the flows' rewriting after every job posted before, and returns the flows
    /// removed (none on failure) with the kernel's counters of them read just before: the
    /// caller tells the engine (`kernelPathLeft`), on its loop, before it migrates them.
    func takeBack(_ flows: [KernelPathFlow]) async -> (ids: [FlowID], lastCounters: [KernelPathCounters]) {
        guard !flows.isEmpty else { return ([], []) }
        return await withCheckedContinuation { (c: CheckedContinuation<([FlowID], [KernelPathCounters]), Never>) in
            queue.async { [self] in
                var last: [KernelPathCounters] = []
                do {
                    last = try kernelPath.counters(of: flows)
                } catch {
                    logger.warning("could not read the kernel path's counters before taking flows back", metadata: ["error": "\(error)"])
                }
                c.resume(returning: removed(flows) ? (flows.map(\.id), last) : ([], []))
            }
        }
    }

    /// Reads the kernel's counters of `flows` and hands them to `plane`'s engine. At most one
    /// read per shard is queued at a time (`plane.kernelCountersQueued`).
    func readCounters(of flows: [KernelPathFlow], for plane: DataPlane) {
        guard !flows.isEmpty, !plane.kernelCountersQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queue.async { [self] in
            defer { plane.kernelCountersQueued.store(false, ordering: .releasing) }
            do {
                let list = try kernelPath.counters(of: flows)
                plane.enqueue { engine, _ in engine.kernelPathCounters(list, now: Syscall.monotonicNow()) }
            } catch {
                logger.warning("could not read the kernel path's counters", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Returns once every job posted before has run.
    func drain() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in queue.async { c.resume() } }
    }

    private func removed(_ flows: [KernelPathFlow]) -> Bool {
        do {
            try kernelPath.leave(flows)
            return true
        } catch {
            logger.error("could not take flows back from the kernel path", metadata: ["flows": "\(flows.count)", "error": "\(error)"])
            return false
        }
    }
}
