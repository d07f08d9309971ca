import Wire

/// Reading and updating what the current phase carries, for the steps that work the same in
/// several phases (the proxy's ACKs, the cache growing while the server still sends).
extension Migration {
    /// From `paused` on: what the pause fixed. Nil while waiting for the flow's state.
    var freeze: Freeze? {
        switch phase {
        case .awaitingState: nil
        case .paused(let f), .cut(let f, _), .resuming(let f, _, _), .rollingBack(let f, _, _): f
        }
    }

    /// Changes the freeze of the current phase (nothing while waiting for the flow's state).
    mutating func updateFreeze(_ body: (inout Freeze) -> Void) {
        switch phase {
        case .awaitingState: return
        case .paused(var f): body(&f); phase = .paused(f)
        case .cut(var f, let c): body(&f); phase = .cut(f, c)
        case .resuming(var f, let c, let s): body(&f); phase = .resuming(f, c, sender: s)
        case .rollingBack(var f, let c, let s): body(&f); phase = .rollingBack(f, c, sender: s)
        }
    }

    /// Changes the new device's handshake, when one was claimed.
    mutating func updateNewDevice(_ body: (inout NewDeviceHandshake) -> Void) {
        updateFreeze { f in
            guard var h = f.newDevice else { return }
            body(&h)
            f.newDevice = h
        }
    }

    var newDevice: NewDeviceHandshake? { freeze?.newDevice }

    /// From the cut on: the cut offsets.
    var cutOffsets: CutOffsets? {
        switch phase {
        case .awaitingState, .paused: nil
        case .cut(_, let c), .resuming(_, let c, _), .rollingBack(_, let c, _): c
        }
    }

    /// The emulated sender delivering the cache (to the new device, or back to the old one).
    var sender: EmulatedSender? {
        switch phase {
        case .resuming(_, _, let s), .rollingBack(_, _, let s): s
        default: nil
        }
    }

    /// Replaces the emulated sender of `resuming` or `rollingBack`.
    mutating func setSender(_ sender: EmulatedSender) {
        switch phase {
        case .resuming(let f, let c, _): phase = .resuming(f, c, sender: sender)
        case .rollingBack(let f, let c, _): phase = .rollingBack(f, c, sender: sender)
        default: return
        }
    }

    var isAwaitingState: Bool { if case .awaitingState = phase { true } else { false } }
    var isPaused: Bool { if case .paused = phase { true } else { false } }
    var isRollingBack: Bool { if case .rollingBack = phase { true } else { false } }
    var isResuming: Bool { if case .resuming = phase { true } else { false } }

    /// Still heading to a new device that has not sent its SYN: what a SYN may claim.
    var awaitsNewDeviceSyn: Bool {
        switch phase {
        case .paused(let f), .cut(let f, _): f.newDevice == nil && restoring == nil
        default: false
        }
    }

    /// A SYN from `source` to `original` is this migration's new device (its target).
    func targets(_ source: IPEndpoint) -> Bool {
        target.address == source.address && !target.awaitsPort && (target.port == nil || target.port == source.port)
    }
}
