import Wire

/// Where a flow's packets are forwarded.
enum KernelPathState: UInt8, Sendable {
    /// By the engine (from the TUN).
    case none
    /// By the kernel: the gateway rewrites the flow's addresses and ports itself; only its SYN,
    /// FIN and RST segments (and packets already queued) still reach the engine.
    case inKernel
    /// Still in the kernel, but the engine asked for it back (`takeKernelPathChanges`).
    case leaving
    /// Back from the kernel; the engine learns its sequence state again from the next segments.
    case resyncing
}

/// When flows are handed to the kernel (issue "Fast packet path", item 4).
public struct KernelPathPolicy: Sendable, Hashable {
    /// A flow is handed over once it has been established this long...
    public var after: Duration
    /// ...has carried at least this many payload bytes, and was active within `after`.
    public var minimumBytes: UInt64
    /// At most this many flows handed over per expiry tick.
    public var perTick: Int
    public init(after: Duration = .seconds(1), minimumBytes: UInt64 = 256 << 10, perTick: Int = 256) {
        self.after = after; self.minimumBytes = minimumBytes; self.perTick = perTick
    }
}

/// A flow as the kernel's rewriting sees it (transparent mode: the device's destination is the
/// server): device -> server packets get source `nat`, server -> `nat` packets get destination
/// `device`. Sequence numbers, options and windows are the same on both sides.
public struct KernelPathFlow: Sendable, Hashable, CustomStringConvertible {
    public var id: FlowID
    public var device: IPEndpoint
    public var server: IPEndpoint
    public var nat: IPEndpoint
    public init(id: FlowID, device: IPEndpoint, server: IPEndpoint, nat: IPEndpoint) {
        self.id = id; self.device = device; self.server = server; self.nat = nat
    }
    public var description: String { "flow \(id) \(device) -> \(server) as \(nat)" }
}

/// The kernel's counters of a flow it forwards (packets and bytes, IP headers included, a
/// super-segment counted once), since the flow was handed over.
public struct KernelPathCounters: Sendable, Hashable {
    public var id: FlowID
    public var packetsToServer: UInt64
    public var bytesToServer: UInt64
    public var packetsToDevice: UInt64
    public var bytesToDevice: UInt64
    public init(id: FlowID, packetsToServer: UInt64, bytesToServer: UInt64, packetsToDevice: UInt64, bytesToDevice: UInt64) {
        self.id = id; self.packetsToServer = packetsToServer; self.bytesToServer = bytesToServer
        self.packetsToDevice = packetsToDevice; self.bytesToDevice = bytesToDevice
    }
}

/// The kernel fast path (DESIGN §2): a spliced flow that is a plain NAT of one connection (no
/// migration changed its sequence spaces) can be forwarded by the kernel, which rewrites its
/// addresses and ports with no copy to user space. The engine chooses such flows in its expiry
/// sweep; the gateway installs the rewriting and confirms (`kernelPathEntered`).
///
/// While in the kernel the engine sees only the flow's SYN, FIN and RST segments: a FIN or RST
/// asks for the flow back so its close is seen. A migration takes the flow back first; the
/// engine then waits until segments taught it the sequence state again and until the device
/// acknowledged everything it was sent before the copy began, so the migration stays exact:
/// every byte the device has not acknowledged is in the copy. An idle flow is asked with
/// probes (keep-alive-like ACKs, RFC 9293 §3.10.7.4: an unacceptable segment is answered with
/// an ACK carrying SND.NXT and RCV.NXT).
extension SpliceEngine {
    /// Flows to hand to the kernel and flows to take back, chosen since the last call. The
    /// caller installs or removes them and confirms with `kernelPathEntered`/`kernelPathLeft`.
    public func takeKernelPathChanges() -> (enter: [KernelPathFlow], leave: [KernelPathFlow]) {
        defer { kernelPathEntering.removeAll(keepingCapacity: true); kernelPathLeaving.removeAll(keepingCapacity: true) }
        return (kernelPathEntering, kernelPathLeaving)
    }

    /// The kernel now forwards these flows: what the engine knew of their sequence numbers
    /// goes stale, and their copy is no longer needed (acknowledgements bypass the engine).
    /// Returns the flows the engine does not take as in the kernel (gone, closing, or no longer
    /// a plain NAT since they were chosen): the caller removes their rewriting again.
    @discardableResult
    public func kernelPathEntered(_ ids: [FlowID], now: Instant) -> [KernelPathFlow] {
        var refused: [KernelPathFlow] = []
        for id in ids {
            kernelPathPending.remove(id)
            guard let slot = table.slot(id: id) else { continue }
            let taken = withFlow(slot) { flow -> Bool in
                guard flow.kernelPath == .none, !flow.isMigrating, flow.state == .established else { return false }
                flow.forwardedByKernel()
                if flow.inFlight != nil {
                    inFlightStorageBytes -= flow.inFlight!.releaseStorage()
                    flow.inFlight = nil
                }
                return true
            }
            guard taken else {
                if let flow = table[slot: slot], flow.kernelPath == .none { refused.append(kernelPathRule(flow)) }
                continue
            }
            kernelPathIDs.insert(id)
            noteCheckpointChange(id)
            counters.kernelPathEntered &+= 1
        }
        return refused
    }

    /// The rewriting of these flows could not be installed: they stay with the engine.
    public func kernelPathEnterFailed(_ ids: [FlowID]) {
        for id in ids { kernelPathPending.remove(id) }
    }

    /// The kernel no longer forwards these flows: the engine learns them again from their next
    /// segments (and, for a migration waiting on them, from probes). `lastCounters`, read just
    /// before the rewriting was removed, say how much the kernel forwarded: the probes' guesses
    /// of each end's sequence numbers start from them.
    public func kernelPathLeft(_ ids: [FlowID], lastCounters: [KernelPathCounters] = [], now: Instant) {
        if !lastCounters.isEmpty { kernelPathCounters(lastCounters, now: now) }
        for id in ids {
            kernelPathPending.remove(id)
            guard let slot = table.slot(id: id) else { continue }
            let wasIn = withFlow(slot) { flow -> Bool in
                guard flow.kernelPath == .inKernel || flow.kernelPath == .leaving else { return false }
                flow.kernelPath = .resyncing
                flow.toServer.forgetSequenceState()
                flow.toDevice.forgetSequenceState()
                if let forwarded = flow.kernelCounters {
                    flow.estimateKernelForwarded(forwarded)
                    logger.debug("flow taken back from the kernel path", metadata: [
                        "flow.id": "\(id)",
                        "kernel.bytes_to_server": "\(forwarded.bytesToServer)", "kernel.bytes_to_device": "\(forwarded.bytesToDevice)",
                        "guess.next_seq_to_server": "\(flow.toServer.lastSeenNextSeq.rawValue)",
                        "guess.next_seq_to_device": "\(flow.toDevice.lastSeenNextSeq.rawValue)",
                    ])
                }
                flow.kernelCounters = nil
                flow.lastActivity = now
                return true
            }
            if wasIn {
                kernelPathIDs.remove(id)
                noteCheckpointChange(id)
                counters.kernelPathLeft &+= 1
            }
        }
    }

    /// Flows the kernel forwards now.
    public var kernelPathFlowCount: Int { kernelPathIDs.count }

    /// Whether flows wait to be handed over or taken back (`takeKernelPathChanges`).
    public var hasKernelPathChanges: Bool { !kernelPathEntering.isEmpty || !kernelPathLeaving.isEmpty }

    /// The flows the kernel forwards now, as it forwards them (to read their counters).
    public func kernelPathFlows() -> [KernelPathFlow] {
        kernelPathIDs.sorted().compactMap { id in table.slot(id: id).flatMap { table[slot: $0] }.map(kernelPathRule) }
    }

    /// `id` as the kernel forwards it, if it does or may (its hand-over is not confirmed yet):
    /// a migration takes it back first.
    public func kernelPathFlow(_ id: FlowID) -> KernelPathFlow? {
        guard let slot = table.slot(id: id), let flow = table[slot: slot],
              flow.kernelPath == .inKernel || flow.kernelPath == .leaving || kernelPathPending.contains(id) else { return nil }
        return kernelPathRule(flow)
    }

    /// The kernel's counters of the flows it forwards: activity keeps them from idling out.
    public func kernelPathCounters(_ list: [KernelPathCounters], now: Instant) {
        for c in list {
            guard let slot = table.slot(id: c.id) else { continue }
            withFlow(slot) { flow in
                guard flow.kernelPath == .inKernel || flow.kernelPath == .leaving, let last = flow.kernelCounters else { return }
                guard c.packetsToServer >= last.packetsToServer, c.packetsToDevice >= last.packetsToDevice,
                      c != last else { return }
                flow.toServer.packets &+= c.packetsToServer - last.packetsToServer
                flow.toServer.bytes &+= c.bytesToServer &- last.bytesToServer
                flow.toDevice.packets &+= c.packetsToDevice - last.packetsToDevice
                flow.toDevice.bytes &+= c.bytesToDevice &- last.bytesToDevice
                flow.kernelCounters = c
                flow.lastActivity = now
            }
        }
    }

    func kernelPathRule(_ flow: Flow) -> KernelPathFlow {
        KernelPathFlow(id: flow.id, device: flow.device, server: flow.server, nat: natEndpoint(flow))
    }

    /// Called by the sweep for each flow it visits: is it one to hand to the kernel?
    func considerForKernelPath(slot: Int, now: Instant) {
        guard let policy = config.kernelPath, kernelPathEntering.count < policy.perTick,
              var flow = table[slot: slot] else { return }
        if flow.kernelPath == .resyncing {
            // Back from the kernel: a normal flow again once its state is known.
            guard flow.toServer.knowsSequenceState && flow.toDevice.knowsSequenceState else { return }
            withFlow(slot) { $0.kernelPath = .none }
            flow.kernelPath = .none
        }
        let after = policy.after.nanoseconds
        // The kernel path holds IPv6 flows only in its `table inet` (with an IPv6 NAT address),
        // and translates no family.
        guard flow.kernelPath == .none, flow.server.family == .ipv4 || config.nat6 != nil, flow.device.family == flow.server.family,
              !kernelPathPending.contains(flow.id), flow.state == .established, !flow.isMigrating, !flow.hasAlias, flow.isPlainNAT,
              now.nanoseconds >= flow.created.nanoseconds &+ after,
              now.nanoseconds < flow.lastActivity.nanoseconds &+ after,
              flow.toServer.bytes &+ flow.toDevice.bytes >= policy.minimumBytes,
              migrations.isEmpty || !migrations.values.contains(where: { $0.flowID == flow.id }) else { return }
        kernelPathEntering.append(kernelPathRule(flow))
        kernelPathPending.insert(flow.id)
    }

    /// A FIN or RST of a flow the kernel forwards: take it back so its close is seen here.
    func kernelPathSawClose(_ flow: inout Flow) {
        guard flow.kernelPath == .inKernel else { return }
        flow.kernelPath = .leaving
        kernelPathLeaving.append(kernelPathRule(flow))
    }

    /// A flow the kernel forwards leaves the table: its rewriting must go too.
    func kernelPathForget(_ flow: Flow) {
        if kernelPathPending.remove(flow.id) != nil {
            // Chosen, maybe installed already: whatever was installed goes (after it, in order).
            kernelPathLeaving.append(kernelPathRule(flow))
        }
        guard flow.kernelPath == .inKernel || flow.kernelPath == .leaving else { return }
        if flow.kernelPath == .inKernel { kernelPathLeaving.append(kernelPathRule(flow)) }
        kernelPathIDs.remove(flow.id)
        counters.kernelPathLeft &+= 1
    }
}

extension Flow {
    /// The kernel forwards the flow from now on (its hand-over confirmed, or adopted so after a
    /// restart): its sequence state is the kernel's, and the kernel's counters, which start at
    /// zero with its entries, are what keeps it alive (`kernelPathCounters`).
    mutating func forwardedByKernel() {
        kernelPath = .inKernel
        toServer.forgetSequenceState()
        toDevice.forgetSequenceState()
        kernelCounters = KernelPathCounters(id: id, packetsToServer: 0, bytesToServer: 0, packetsToDevice: 0, bytesToDevice: 0)
    }
}
