import Wire
import Logging

/// What each segment teaches the engine about its flow (sequence ends, acknowledgements, FINs,
/// the connection state, RFC 9293 §3.3.2 as seen from the middle), and the flow's removal,
/// which returns its NAT port and in-flight storage.
extension SpliceEngine {
    // MARK: Shared bookkeeping

    /// Records what a segment says about its sender's direction and the other direction's FIN.
    /// `ackInOtherSpace` is the segment's ack mapped back into the other direction's sender's
    /// sequence space (where that direction's `finSeq` is recorded).
    /// `timestamp` is the segment's TSval, if it carries the option.
    func observe(sender: inout DirectionState, other: inout DirectionState, tcp: TCPSegment, timestamp: UInt32?,
                 ackInOtherSpace: SeqNumber) {
        let flags = tcp.flags
        sender.packets &+= 1
        sender.bytes &+= UInt64(tcp.payloadLength)
        sender.lastWindow = tcp.window
        if let timestamp { sender.lastTSval = timestamp }
        let end = tcp.seq + tcp.sequenceLength
        if let n = sender.nextSeq { sender.nextSeq = SeqNumber.max(n, end) } else { sender.nextSeq = end }
        if flags.contains(.fin) { sender.finSeq = tcp.seq + UInt32(tcp.payloadLength) }
        if flags.contains(.ack) {
            let ack = ackInOtherSpace
            if let h = sender.highestAck { sender.highestAck = SeqNumber.max(h, ack) } else { sender.highestAck = ack }
            if let fin = other.finSeq, ack.greaterThan(fin) { other.finAcked = true }
        }
    }

    func advanceState(_ flow: inout Flow, flags: TCPFlags, fromDevice: Bool) {
        let stateBefore = flow.state
        defer { if flow.state != stateBefore || flags.contains(.fin) { noteCheckpointChange(flow.id) } }
        if flags.contains(.rst) {
            if flow.state != .reset { flow.stateBeforeReset = flow.state }
            flow.state = .reset
            return
        }
        if flow.state == .reset, let before = flow.stateBeforeReset {
            // Traffic after a RST: its receiver ignored it (RFC 5961 §3), so the flow lives on.
            flow.state = before
            flow.stateBeforeReset = nil
        }
        switch flow.state {
        case .synSent:
            if !fromDevice && flags.contains(.syn) && flags.contains(.ack) { flow.state = .synReceived }
        case .synReceived:
            if fromDevice && flags.contains(.ack) && !flags.contains(.syn) { flow.state = .established }
        default:
            break
        }
        if flow.toServer.finSeq != nil || flow.toDevice.finSeq != nil {
            if flow.toServer.finAcked && flow.toDevice.finAcked {
                flow.state = .closed
            } else if flow.state == .established || flow.state == .synReceived {
                flow.state = .halfClosed
            }
        }
    }

    /// The server-side endpoint of `flow`: the NAT address of its server's family, and its port.
    /// A flow exists only when that family has one (`fromDevice`).
    func natEndpoint(_ flow: Flow) -> IPEndpoint {
        IPEndpoint(config.natAddress(flow.server.family) ?? .v4(config.nat), flow.natPort)
    }

    func withFlow<R>(_ slot: Int, _ body: (inout Flow) -> R) -> R {
        body(&table[slot: slot]!)
    }

    func removeFlow(slot: Int, closed: Bool) {
        guard var flow = table.remove(slot: slot) else { return }
        noteCheckpointChange(flow.id)
        if !interruptedMigrations.isEmpty { interruptedMigrations[flow.id] = nil }
        kernelPathForget(flow)
        natPorts.release(flow.natPort)
        if flow.inFlight != nil { inFlightStorageBytes -= flow.inFlight!.releaseStorage() }
        if closed { counters.flowsClosed &+= 1 } else { counters.flowsExpired &+= 1 }
        journal.append(.flowDestroy, at: flow.lastActivity, flow: flow.id, device: flow.device, server: flow.server,
                       detail: closed ? "closed" : "expired")
        logger.debug("flow removed", metadata: [
            "flow.id": "\(flow.id)", "flow.state": "\(flow.state.rawValue)",
            "flow.bytes_to_server": "\(flow.toServer.bytes)", "flow.bytes_to_device": "\(flow.toDevice.bytes)",
        ])
    }
}
