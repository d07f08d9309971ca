import Logging
import Wire

/// The splice's window update, kept until the server shows it arrived (issue 13 item 7).
///
/// Through the migration the server saw a zero window (the pause). The splice's ACK carries
/// the new device's real window; it is a pure ACK, so nothing retransmits it when it is lost,
/// and the server only learns of the open window from its persist timer, whose probes back off
/// exponentially (RFC 9293 §3.8.6.1; Linux: from the RTO up to 120 s): streams stalled 2 to 11 s
/// with 200 flows moved at once. So the proxy sends the update again, with a bounded backoff,
/// until the server shows the window is open: it sends data past the edge it was held at, or
/// acknowledges device-side bytes sent after the splice (the segments that carried them
/// carried the device's window too). A migration is done when bytes flow.
struct WindowReopen: Sendable {
    let migration: MigrationID
    /// The right edge the server was held at (the splice's ack, server space): data past it
    /// means the server took an open window. A zero-window probe (RFC 9293 §3.8.6.1; Linux
    /// sends SND.UNA - 1 without data) does not pass it.
    let edge: SeqNumber
    /// The server's ack of the device side's stream at the splice (new device's space).
    let serverAck: SeqNumber?
    /// The TSval the splice's ACK carried (RFC 7323 §5.3: never go back below it).
    let tsval: UInt32?
    let splicedAt: Instant
    var sentAt: Instant
    var resends = 0

    /// First resend after 200 ms (Linux's minimum RTO: a server with data answers well
    /// within it), doubling up to 3.2 s.
    static let firstInterval: UInt64 = 200_000_000
    /// At most this many resends (200 ms + ... + 3.2 s = 6.2 s): an idle server never sends
    /// past the edge, and by then its own persist probes come as often.
    static let maxResends = 5

    var nextResendAt: UInt64 { sentAt.nanoseconds &+ (Self.firstInterval << UInt64(min(resends, Self.maxResends))) }
}

extension SpliceEngine {
    /// Starts watching a flow just spliced (`spliceAck`: the ACK that went to the server).
    func watchWindowReopen(_ f: Flow, migration: MigrationID, edge: SeqNumber, tsval: UInt32?, now: Instant) {
        windowReopens[f.id] = WindowReopen(migration: migration, edge: SeqNumber.max(edge, f.toDevice.nextSeq ?? edge),
                                           serverAck: f.toDevice.highestAck, tsval: tsval, splicedAt: now, sentAt: now)
    }

    /// Whether the server has shown it took the open window: data past the edge, or an ack of
    /// device-side bytes sent after the splice.
    func windowSeenOpen(_ f: Flow, _ w: WindowReopen) -> Bool {
        if let n = f.toDevice.nextSeq, n.greaterThan(w.edge) { return true }
        if let a = f.toDevice.highestAck, let before = w.serverAck, a.greaterThan(before) { return true }
        return false
    }

    /// Resends each spliced flow's window update that is due, until the server shows the
    /// window open or the resends run out (run from `runMigrationTimers`).
    func runWindowReopens(now: Instant, generated: PacketBatch) {
        for id in windowReopens.keys.sorted() {
            guard var w = windowReopens[id] else { continue }
            guard let slot = table.slot(id: id), let f = table[slot: slot], f.migration == nil,
                  f.state == .established || f.state == .halfClosed else {
                windowReopens[id] = nil // gone, reset, closing or migrating again: nothing to reopen
                continue
            }
            if windowSeenOpen(f, w) {
                windowReopens[id] = nil
                logger.info("migration bytes flowing", metadata: [
                    "migration.id": "\(w.migration)", "flow.id": "\(id)", "migration.window_update_resends": "\(w.resends)",
                    "migration.seconds_after_splice": "\(Double(now.nanoseconds &- w.splicedAt.nanoseconds) / 1e9)",
                ])
                continue
            }
            guard now.nanoseconds >= w.nextResendAt else { continue }
            guard w.resends < WindowReopen.maxResends else {
                windowReopens[id] = nil
                logger.debug("window update not answered, left to the server's persist timer", metadata: [
                    "migration.id": "\(w.migration)", "flow.id": "\(id)",
                ])
                continue
            }
            w.resends += 1
            w.sentAt = now
            windowReopens[id] = w
            emitWindowUpdate(f, tsval: w.tsval, generated: generated)
        }
    }

    /// The device side's current ACK and window toward the server (the splice's ACK, as the
    /// flow stands now): window translated to the scale the server applies (RFC 7323 §2.3).
    func emitWindowUpdate(_ f: Flow, tsval: UInt32?, generated: PacketBatch) {
        guard let next = f.toServer.nextSeq, let ack = f.toServer.highestAck else { return }
        var options: [TCPOption] = []
        if f.deviceSyn.timestamps && f.serverSyn.timestamps {
            var value = tsval ?? 0
            if let last = f.toServer.lastTSval {
                let now = last &+ f.toServer.tsOffset
                if tsval == nil || SeqNumber(now).greaterThan(SeqNumber(value)) { value = now }
            }
            options = TCPOption.alignedTimestamp(value: value, echoReply: f.toDevice.lastTSval ?? 0)
        }
        emit(TCPPacketSpec(source: natEndpoint(f), destination: f.server,
                           seq: f.toServer.seqOffset.apply(next), ack: ack, flags: .ack,
                           window: WindowScale(from: f.currentDeviceShift, to: f.deviceWindowShift).translate(f.toServer.lastWindow),
                           options: options, tos: f.dscpToServer).imitating(f.deviceIP),
             generated: generated)
    }
}
