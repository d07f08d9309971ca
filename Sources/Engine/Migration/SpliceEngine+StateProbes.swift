import Wire

/// State probes: how a migration learns the sequence state of an idle flow just back from the
/// kernel path (`SpliceEngine+MigrationAwaiting`). Each end is sent an ACK in the other end's
/// name that it must answer with an ACK <SEQ=SND.NXT><ACK=RCV.NXT> (RFC 9293 §3.10.7.4),
/// which teaches the engine that end's state.
///
/// The probes must also pass what sits between the gateway and an end: a strict RFC 7323 stack
/// drops a segment without the timestamp option once timestamps were negotiated (§3.2), and a
/// stateful firewall (`ct state invalid drop`) drops a segment whose sequence or ack number is
/// outside the windows it tracked. So the rounds alternate:
/// - even rounds (the first): one guessed ACK per end, `guessedProbe`, from the last segment
///   seen plus what the kernel counted since. With timestamps it carries a TSval 2^30 older
///   than the sender's last: it fails the receiver's PAWS test, and RFC 7323 §5.3 says such a
///   segment is answered with an ACK and dropped, changing nothing. Its sequence number is a
///   quarter of the receiver's window past RCV.NXT: inside what a firewall accepts, and not
///   before RCV.NXT, because Linux (since 6.15) drops an old pure ACK that fails PAWS without
///   answering (a reordered ACK, to it). Without timestamps the sequence number is a quarter
///   window before RCV.NXT: unacceptable (RFC 9293 §3.10.7.4), still inside a firewall's
///   bounds. Its ack is a little behind the receiver's SND.NXT.
/// - odd rounds: two ACKs per end with sequence numbers 2^31 apart and no timestamp, for when
///   the guesses were wrong (a receive window is below 2^31, RFC 7323 §2.3, so one of the two
///   is always unacceptable; the acceptable one carries an old ack and no data, ignored).
extension SpliceEngine {
    /// How far behind the guessed SND.NXT a guessed probe's ack is: the guess from the kernel's
    /// counters can be high by the option bytes of SACK-carrying segments. Below half the
    /// smallest window conntrack allows an ack to trail by (66,000 bytes).
    static let probeAckSlack: UInt32 = 32_768
    /// A guessed probe's TSval is this much older than the sender's last (RFC 7323 §5.3).
    static let probeTSvalAge: UInt32 = 1 << 30

    func sendStateProbes(_ flow: Flow, round: UInt8, generated: PacketBatch) {
        let nat = natEndpoint(flow)
        if round % 2 == 0 {
            // In the server's name to the device, in the device's name to the server.
            emit(guessedProbe(from: flow.original, to: flow.device, sender: flow.toDevice, receiver: flow.toServer,
                              receiverShift: flow.deviceWindowShift, timestamps: flow.negotiatedTimestamps).imitating(flow.serverIP),
                 generated: generated)
            emit(guessedProbe(from: nat, to: flow.server, sender: flow.toServer, receiver: flow.toDevice,
                              receiverShift: flow.serverWindowShift, timestamps: flow.negotiatedTimestamps).imitating(flow.deviceIP),
                 generated: generated)
            counters.stateProbes &+= 2
            return
        }
        for half in [UInt32(0), UInt32(1) << 31] {
            emit(blindProbe(flow, toDevice: true, half: half), generated: generated)
            emit(blindProbe(flow, toDevice: false, half: half), generated: generated)
        }
        counters.stateProbes &+= 4
    }

    /// One of an odd round's two ACKs toward an end (`half`: 0 or 2^31 added to its sequence
    /// number), knowing nothing of the flow's sequence state but where its streams started.
    func blindProbe(_ flow: Flow, toDevice: Bool, half: UInt32) -> TCPPacketSpec {
        if toDevice {
            return TCPPacketSpec(source: flow.original, destination: flow.device, seq: flow.streamStartToDevice + half,
                                 ack: flow.streamStartToServer, flags: .ack, window: 0).imitating(flow.serverIP)
        }
        return TCPPacketSpec(source: natEndpoint(flow), destination: flow.server,
                             seq: flow.streamStartToServer + half, ack: flow.streamStartToDevice, flags: .ack,
                             window: 0).imitating(flow.deviceIP)
    }

    /// An ACK in `sender`'s name (`sender` is the direction it pretends to continue, `receiver`
    /// the direction the probed end sends), from the last-seen values however stale.
    func guessedProbe(from source: IPEndpoint, to destination: IPEndpoint, sender: DirectionState,
                      receiver: DirectionState, receiverShift: UInt8, timestamps: Bool) -> TCPPacketSpec {
        // The probed end's receive window as it last announced it.
        let window = UInt64(receiver.lastWindow) << UInt64(min(receiverShift, 14))
        let step = UInt32(max(1, min(window / 4, 1 << 18)))
        return TCPPacketSpec(
            source: source, destination: destination,
            seq: timestamps ? sender.lastSeenNextSeq + step : sender.lastSeenNextSeq - step,
            ack: receiver.lastSeenNextSeq - Self.probeAckSlack,
            flags: .ack, window: sender.lastWindow,
            options: timestamps ? TCPOption.alignedTimestamp(value: sender.lastSeenTSval &- Self.probeTSvalAge,
                                                             echoReply: receiver.lastSeenTSval) : [])
    }
}

extension Flow {
    /// Both ends use timestamps (RFC 7323 §3.2: then every segment carries the option).
    var negotiatedTimestamps: Bool { deviceSyn.timestamps && serverSyn.timestamps }

    /// Moves the last-seen next sequence numbers on by the payload the kernel forwarded, as
    /// far as its counters tell: their bytes include each packet's IP and TCP headers (a
    /// super-segment counted once), taken here as the family's IP header, 20 bytes of TCP and
    /// the timestamp option. Options beyond it (SACK blocks) make the guess high by their size.
    mutating func estimateKernelForwarded(_ c: KernelPathCounters) {
        let header = UInt64(server.family.headerLength + TCPSegment.minimumHeaderLength
                            + (negotiatedTimestamps ? TCPOption.alignedTimestampLength : 0))
        func payload(_ bytes: UInt64, _ packets: UInt64) -> UInt32 {
            let (headers, overflow) = packets.multipliedReportingOverflow(by: header)
            return overflow || headers >= bytes ? 0 : UInt32(truncatingIfNeeded: bytes - headers)
        }
        toServer.estimateForwarded(payload: payload(c.bytesToServer, c.packetsToServer))
        toDevice.estimateForwarded(payload: payload(c.bytesToDevice, c.packetsToDevice))
    }
}
