import Wire

/// What the engine tells whoever drives it, besides the packets: the part of its output that
/// is not bytes. The driver (the data plane) takes the events after each call into the engine
/// (`takeEvents`) and acts on them: it installs or removes kernel-path rewriting, and keeps the
/// registry of new-device SYNs (several shards) up to date. Nobody outside polls the engine for
/// these, and nothing holds a lock while calling into it.
public enum EngineEvent: Sendable, Equatable {
    /// Hand these flows to the kernel; confirm with `kernelPathEntered` (or, when the rewriting
    /// could not be installed, `kernelPathEnterFailed`).
    case kernelPathEnter([KernelPathFlow])
    /// Take these flows back from the kernel; confirm with `kernelPathLeft`.
    case kernelPathLeave([KernelPathFlow])
    /// Migration `migration` waits for an opening SYN from `target` (its port, once known) to
    /// `original`. Sent again when the target's port becomes known.
    case expectNewDeviceSyn(MigrationID, target: MigrationTarget, original: IPEndpoint)
    /// Migration `migration` no longer waits for a SYN (it claimed one, or it ended, or it
    /// rolls back).
    case newDeviceSynNoLongerAwaited(MigrationID)
    /// This engine no longer holds the device-side 4-tuple it was given a new device's SYN
    /// for (`assignNewDeviceSyn`): the flow ended, or the SYN was never claimed.
    case released(device: IPEndpoint, original: IPEndpoint)
}

extension SpliceEngine {
    /// Whether `takeEvents` has something to say (cheap: checked after every batch).
    public var hasEvents: Bool {
        !events.isEmpty || !kernelPathEntering.isEmpty || !kernelPathLeaving.isEmpty || !announcedAwaiting.isEmpty
    }

    /// The events since the last call, oldest first.
    public func takeEvents() -> [EngineEvent] {
        if !announcedAwaiting.isEmpty {
            for id in announcedAwaiting.sorted() where awaitedNewDevice(id) == nil {
                announcedAwaiting.remove(id)
                events.append(.newDeviceSynNoLongerAwaited(id))
            }
        }
        let (enter, leave) = takeKernelPathChanges()
        if !enter.isEmpty { events.append(.kernelPathEnter(enter)) }
        if !leave.isEmpty { events.append(.kernelPathLeave(leave)) }
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    /// Announces the SYN migration `id` waits for (after its start, or once its port is known).
    func announceAwaitedNewDevice(_ id: MigrationID) {
        guard let (target, original) = awaitedNewDevice(id) else { return }
        announcedAwaiting.insert(id)
        events.append(.expectNewDeviceSyn(id, target: target, original: original))
    }

    /// Called by the expiry tick: the 4-tuples given to this engine by the arbiter that it no
    /// longer holds (nor waits to claim, nor keeps the SYN of for a migration not yet paused)
    /// are released.
    func releaseAssignedKeys() {
        guard !assignedKeys.isEmpty else { return }
        for key in assignedKeys where newDeviceAssignments[key] == nil && !holds(device: key.device, original: key.original)
            && !holdsPendingSyn(key) {
            assignedKeys.remove(key)
            events.append(.released(device: key.device, original: key.original))
        }
    }

    /// A migration waiting for its flow's state keeps the SYN from `key` until it pauses.
    private func holdsPendingSyn(_ key: DeviceSideKey) -> Bool {
        migrations.values.contains { m in
            guard case .awaitingState(let waiting) = m.phase, let syn = waiting.pendingSyn,
                  let (source, destination, _) = syn.withUnsafeBytes({ HeaderPeek($0).tcpEndpoints }) else { return false }
            return source == key.device && destination == key.original
        }
    }
}
