import Wire

/// One side of a flow whose migration a restart interrupted.
enum InterruptedSide: Hashable, Sendable { case device, server }

/// A migration the proxy's restart interrupted after its pause that can't go back to its old
/// device (`SpliceEngine+RestoredMigration` takes the others back): the new device had already
/// sent bytes on to the server, or the checkpoint (format 1) lacks the bytes the previous
/// process acknowledged to the server on the device's behalf (DESIGN §6 step 2). The stream
/// cannot go on byte-exact; left alone, both ends would wait on each other until their
/// timeouts. Instead the adopted flow is ended cleanly: each side's next segment is answered with a RST at
/// exactly the sequence number it expects (its acknowledgement: RFC 5961 §3.2 accepts it at
/// once) and dropped; once both sides were reset the flow is removed. Nothing of it reaches
/// the other side meanwhile. A device that was only receiving has nothing to send: when the
/// server side is reset, the device is sent the two blind state probes (an unacceptable ACK
/// is answered with <SEQ=SND.NXT><ACK=RCV.NXT>, RFC 9293 §3.10.7.4), and its answer is reset.
extension SpliceEngine {
    /// Flows adopted with a migration the restart interrupted, not yet reset on both sides.
    public var interruptedMigrationCount: Int { interruptedMigrations.count }

    /// The interrupted migration's report, as if it had ended here: aborted (rolled back when it
    /// had not paused yet, so nothing had changed), with the reason (`tsmp migrations`, a device
    /// asking for it after the restart). Its id is not handed out again.
    func reportInterrupted(_ c: FlowCheckpoint, device: IPEndpoint, now: Instant) {
        guard let mid = c.migrationID, finishedMigrations[mid] == nil, migrations[mid] == nil,
              let local = shard.localID(global: mid.rawValue) else { return }
        nextMigrationID = max(nextMigrationID, local + 1)
        var target = MigrationTarget(address: IPv4Address(0))
        if let t = c.migrationTarget, case .v4(let address) = t.address {
            target = MigrationTarget(address: address, port: t.port == 0 ? nil : t.port)
        }
        // Still waiting for the flow's state, it had changed nothing: the flow stays on its device.
        let phase: MigrationPhase = c.heldByMigration ? .aborted : .rolledBack
        recordFinished(MigrationReport(
            id: mid, flow: c.id, oldDevice: device, target: target, newDevice: nil, phase: phase,
            phases: [MigrationReport.PhaseTime(phase: phase, seconds: 0)], cutOffsetToDevice: nil, cutOffsetToServer: nil,
            bytesCached: 0, retransmissions: 0, timeouts: 0,
            reason: !c.heldByMigration
                ? "interrupted by the proxy's restart before it paused (the flow's state was still being learned): nothing had changed, the flow stays on its device"
                : c.freeze?.newDeviceSentData == true
                ? "interrupted by the proxy's restart after the new device had sent data on to the server: the old device's stream can't continue there, so the flow is reset on both sides"
                : "interrupted by the proxy's restart, and the checkpoint lacks what going back to the old device needs (format 1): the flow is reset on both sides"))
    }

    func resetInterrupted(_ packet: TCPIPPacket, slot: Int, side: InterruptedSide, now: Instant,
                          generated: PacketBatch) -> Verdict {
        guard let flow = table[slot: slot] else { return .drop(.noFlow) }
        let tcp = packet.tcp
        if !tcp.flags.contains(.rst) {
            let ack = tcp.flags.contains(.ack) ? tcp.ack : tcp.seq + tcp.sequenceLength
            // From whom the sender talks to, as it addressed the segment.
            emit(TCPPacketSpec(source: packet.destination, destination: packet.source, seq: ack, flags: .rst, window: 0),
                 generated: generated)
        }
        var done = interruptedMigrations[flow.id] ?? []
        done.insert(side)
        if side == .server && !done.contains(.device) {
            for half in [UInt32(0), UInt32(1) << 31] { emit(blindProbe(flow, toDevice: true, half: half), generated: generated) }
            counters.stateProbes &+= 2
        }
        logger.notice("flow reset: its migration was interrupted by the proxy's restart", metadata: [
            "flow.id": "\(flow.id)", "flow.side": "\(side)", "flow.device": "\(flow.device)", "flow.server": "\(flow.server)",
        ])
        if done.count == 2 {
            interruptedMigrations[flow.id] = nil
            withFlow(slot) { $0.state = .reset }
            removeFlow(slot: slot, closed: true)
        } else {
            interruptedMigrations[flow.id] = done
            withFlow(slot) { $0.lastActivity = now }
        }
        return .drop(.interruptedMigration)
    }
}
