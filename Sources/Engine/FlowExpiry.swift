import Wire

/// Removing flows that ended or went idle (RFC 5382 §5 timeouts), by an incremental sweep:
/// each call examines at most `limits.expirySweepPerTick` slots, continuing where the last
/// one stopped, so no call walks a million-flow table at once.
extension SpliceEngine {
    /// Expires flows whose time is up. Call every ~100 ms with the current time.
    public func expire(now: Instant) {
        expireFragments(now: now)
        if !retiredKeys.isEmpty { retiredKeys = retiredKeys.filter { now < $0.value } }
        releaseAssignedKeys()
        let n = table.slotCount
        guard n > 0 else { return }
        let budget = min(n, config.limits.expirySweepPerTick)
        for _ in 0..<budget {
            if sweepCursor >= n { sweepCursor = 0 }
            let slot = sweepCursor
            sweepCursor += 1
            guard let flow = table[slot: slot], flow.migration == nil else { continue }
            let limit = timeout(for: flow.state)
            let idle = now > flow.lastActivity ? now.nanoseconds &- flow.lastActivity.nanoseconds : 0
            if idle > limit {
                removeFlow(slot: slot, closed: flow.state == .closed || flow.state == .reset)
            } else {
                if let copy = flow.inFlight, copy.count == 0, copy.storageBytes > 0, idle >= Self.idleCopyRelease {
                    // A quiet flow with nothing in flight gives its copy's storage back to the budget.
                    withFlow(slot) { inFlightStorageBytes -= $0.inFlight!.releaseStorage() }
                }
                if config.kernelPath != nil { considerForKernelPath(slot: slot, now: now) }
            }
        }
    }

    /// Expires everything that can expire by `now`, sweeping the whole table (tests, replay end).
    public func expireAll(now: Instant) {
        let n = table.slotCount
        for slot in 0..<n {
            guard let flow = table[slot: slot], flow.migration == nil else { continue }
            if now.nanoseconds > flow.lastActivity.nanoseconds &+ timeout(for: flow.state) {
                removeFlow(slot: slot, closed: flow.state == .closed || flow.state == .reset)
            }
        }
    }

    /// How long a flow with an empty in-flight copy keeps its storage (bursts reuse it).
    static let idleCopyRelease: UInt64 = 1_000_000_000

    /// Absorbs a migrated-away device's late segments for the closed-flow linger.
    func retire(_ key: DeviceSideKey, now: Instant) {
        retiredKeys[key] = now + timeout(for: .closed)
    }

    func timeout(for state: FlowState) -> UInt64 {
        let t = config.limits.timeouts
        switch state {
        case .synSent, .synReceived: return t.embryonic.nanoseconds
        case .established: return t.establishedIdle.nanoseconds
        case .halfClosed: return t.halfClosedIdle.nanoseconds
        case .closed, .reset: return t.closedLinger.nanoseconds
        }
    }

    /// What `tsmp flows` shows, sorted by id.
    public func flowSummaries(now: Instant) -> [FlowSummary] {
        var out: [FlowSummary] = []
        out.reserveCapacity(table.count)
        let waiting = Dictionary(migrations.values.filter(\.isAwaitingState).map { ($0.flowID, $0.id) }, uniquingKeysWith: min)
        for case let flow? in table.slots {
            out.append(FlowSummary(
                id: flow.id, device: flow.device, original: flow.original,
                nat: natEndpoint(flow), server: flow.server, state: flow.state,
                packetsToServer: flow.toServer.packets, bytesToServer: flow.toServer.bytes,
                packetsToDevice: flow.toDevice.packets, bytesToDevice: flow.toDevice.bytes,
                inFlightBytes: flow.inFlight?.count ?? 0,
                ageSeconds: seconds(flow.created, now), idleSeconds: seconds(flow.lastActivity, now),
                migration: flow.migration ?? waiting[flow.id],
                migrationPhase: flow.migration.flatMap { migrations[$0]?.reportedPhase } ?? (waiting[flow.id] != nil ? .requested : nil),
                inKernel: flow.kernelPath == .inKernel ? true : nil))
        }
        return out.sorted { $0.id < $1.id }
    }

    /// Flow `id`'s endpoints on each side (the device and the destination it dialled, the NAT
    /// address and the server), nil when the flow is gone: one lookup, no walk of the table
    /// (the capture's migration comments find the flow's packets with them).
    public func flowEndpoints(_ id: FlowID) -> (device: IPEndpoint, original: IPEndpoint, nat: IPEndpoint, server: IPEndpoint)? {
        guard let flow = table.slot(id: id).flatMap({ table[slot: $0] }) else { return nil }
        return (flow.device, flow.original, natEndpoint(flow), flow.server)
    }

    private func seconds(_ from: Instant, _ to: Instant) -> Double {
        to > from ? Double(to.nanoseconds - from.nanoseconds) / 1e9 : 0
    }
}

extension Duration {
    var nanoseconds: UInt64 {
        let c = components
        return UInt64(max(0, c.seconds)) * 1_000_000_000 + UInt64(max(0, c.attoseconds) / 1_000_000_000)
    }
}
