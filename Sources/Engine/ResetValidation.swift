import Wire

/// What a RST's sequence number means to its receiver (RFC 5961 §3.2; RFC 9293 §3.10.7.4).
enum ResetCheck: Equatable {
    /// At the receiver's RCV.NXT (or between it and what the sender has sent, which the
    /// receiver may hold unacknowledged): the receiver tears the connection down.
    case accepted
    /// Inside the receiver's window but not at RCV.NXT: the receiver answers with a challenge
    /// ACK and the connection lives on; only a RST at the ACK's number would end it.
    case challenged
    /// Outside the window: every receiver discards it.
    case outOfWindow

    /// RFC 5961 §3.2's exact match, widened to what may be in flight: `seq` is the receiver's
    /// RCV.NXT (`rcvNxt`, its last acknowledgment) or lies between it and the sender's next
    /// sequence number `sent` (bytes the receiver may hold unacknowledged).
    static func atReceiverEdge(_ seq: SeqNumber, rcvNxt: SeqNumber, sent: SeqNumber) -> Bool {
        seq.greaterThanOrEqual(rcvNxt) && seq.lessThanOrEqual(SeqNumber.max(sent, rcvNxt))
    }
}

extension SpliceEngine {
    /// Whether a RST from the device (`fromDevice`) or from the server would end the flow at
    /// its receiver, judged from what the proxy saw of that receiver: its last acknowledgment
    /// (RCV.NXT) and window. Before the receiver acknowledged anything (handshake), or when
    /// the kernel path hid the sequence state, every RST counts as accepted: the proxy can't
    /// judge it and a receiver in SYN-SENT checks the ACK, not the window.
    ///
    /// An off-path attacker's RST (or one a middlebox makes up) used to mark the flow reset;
    /// the endpoints ignored it, but the flow then expired after `closedLinger` and the device's
    /// next segments matched no flow. Now the receiver's verdict is the proxy's.
    func checkReset(_ flow: Flow, seq: SeqNumber, fromDevice: Bool) -> ResetCheck {
        let sender = fromDevice ? flow.toServer : flow.toDevice
        let receiver = fromDevice ? flow.toDevice : flow.toServer
        guard flow.state == .established || flow.state == .halfClosed,
              sender.knowsSequenceState, receiver.knowsSequenceState,
              let rcvNxt = receiver.highestAck else { return .accepted }
        // `seq`, the receiver's acks and the sender's next are all in the sender's own space
        // (recorded before any rewriting).
        if ResetCheck.atReceiverEdge(seq, rcvNxt: rcvNxt, sent: sender.nextSeq ?? rcvNxt) { return .accepted }
        let shift = fromDevice ? flow.serverWindowShift : flow.currentDeviceShift
        let window = WindowScale.bytes(receiver.lastWindow, shift: shift)
        if window > 0 && seq.greaterThan(rcvNxt) && seq.lessThan(rcvNxt + UInt32(clamping: window)) {
            return .challenged
        }
        return .outOfWindow
    }
}

extension SpliceEngine {
    /// A RST from the server or the old device while a migration holds the flow: a valid one
    /// ends the migration (aborted, with the reason) and the flow on every side; one outside
    /// the window is dropped (the proxy advertised window 0 to both, so only RCV.NXT counts,
    /// RFC 5961 §3.2). Returns nil for anything but a RST.
    func migratingReset(_ tcp: TCPSegment, slot: Int, mid: MigrationID, fromServer: Bool, now: Instant,
                        generated: PacketBatch) -> Verdict? {
        guard tcp.flags.contains(.rst), let f = table[slot: slot], let freeze = migrations[mid]?.freeze else { return nil }
        // The receiver's RCV.NXT as the sender may know it: its last ack, up to what the proxy
        // acknowledged in its name (the pause's pre-ack) and what the sender has sent.
        let low: SeqNumber?, high: SeqNumber?
        if fromServer {
            low = f.toServer.highestAck
            high = f.toDevice.nextSeq.map { SeqNumber.max($0, preAckPoint(f, freeze)) } ?? preAckPoint(f, freeze)
        } else {
            low = f.toDevice.highestAck
            high = f.toServer.nextSeq
        }
        if let low, let high, !ResetCheck.atReceiverEdge(tcp.seq, rcvNxt: low, sent: high) {
            return .drop(.resetOutOfWindow)
        }
        abandon(slot: slot, mid: mid, reason: fromServer ? "the server reset the connection" : "the old device reset the connection",
                now: now, generated: generated)
        return .consumed
    }
}
