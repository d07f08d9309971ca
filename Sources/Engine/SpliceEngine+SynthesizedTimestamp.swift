import Wire

/// A device that took a migrated connection without offering timestamps (Windows does not by
/// default) while the connection with the server negotiated them. RFC 7323 §3.2: once
/// negotiated, every non-RST segment carries the option, and a receiver SHOULD drop one
/// without it; Linux accepts them, stricter stacks do not. So the proxy adds the option toward
/// the server in the device's name: TSval goes on from the last one the server saw (ticking
/// once per millisecond after the splice, once per segment while the migration holds the
/// flow) and TSecr echoes the server's latest TSval. A later migration to a device with
/// timestamps continues from the last synthesized value (`Freeze.lastTSvalToServer`).
///
/// Room for the option: the SYN-ACK to such a device offers the server's MSS less the option's
/// 12 bytes (`NewDeviceHandshake`), and a longer segment is cut to the server's MSS here.
extension SpliceEngine {
    /// The device's clock after the splice: milliseconds of `now` (the same 1 kHz any TSval
    /// may tick at, RFC 7323 §5.4), shifted by the flow's `toServer.tsOffset`.
    static func synthesizedClock(_ now: Instant) -> UInt32 { UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) }

    /// Back to plain forwarding (spliced, or rolled back) for a device without timestamps: its
    /// synthesized clock goes on from `last`, the last TSval the server saw.
    static func rebaseSynthesizedClock(_ f: inout Flow, after last: UInt32?, now: Instant) {
        guard f.deviceLacksTimestamps else { return }
        let clock = synthesizedClock(now)
        f.toServer.tsOffset = (last ?? 0) &+ 1 &- clock
        f.toServer.lastTSval = clock
    }

    /// Rebuilds `packet`, already rewritten toward the server, into `generated` with the
    /// timestamp option (TSval `value`, TSecr `echo`) and its SACK blocks (at most 3 then fit
    /// the 40 option bytes), in pieces of at most `serverMSS` less the options (RFC 6691).
    /// Returns `.consumed`; a RST (which needs no option) is left as it is: `.forward`.
    func addTimestampTowardServer(_ packet: TCPIPPacket, value: UInt32, echo: UInt32, serverMSS: Int,
                                  generated: PacketBatch) -> Verdict {
        let tcp = packet.tcp
        guard !tcp.flags.contains(.rst) else { return .forward }
        var options = TCPOption.alignedTimestamp(value: value, echoReply: echo)
        if case .sack(let blocks)? = tcp.options.first(kind: TCPOptionKind.sack)?.1, !blocks.isEmpty {
            options += [.noOperation, .noOperation, .sack(Array(blocks.prefix(3)))]
        }
        let optionBytes = options.reduce(0) { $0 + $1.encodedLength }
        emitPieces(of: packet, options: options, pieceSize: max(serverMSS - optionBytes, 64), generated: generated)
        counters.timestampsSynthesized &+= 1
        return .consumed
    }

    /// For a segment of a frozen flow's device without timestamps: the next TSval toward the
    /// server (one past the last it saw) and the server's latest TSval to echo; nil when the
    /// device has timestamps or the connection never negotiated them.
    func nextFrozenTimestamp(slot: Int, mid: MigrationID, deviceHasTimestamps: Bool) -> (value: UInt32, echo: UInt32)? {
        guard let f = table[slot: slot], f.deviceSyn.timestamps, f.serverSyn.timestamps, !deviceHasTimestamps,
              let m = migrations[mid], m.freeze != nil else { return nil }
        let value = (m.freeze?.lastTSvalToServer ?? 0) &+ 1
        migrations[mid]?.updateFreeze { $0.lastTSvalToServer = value }
        return (value, f.toDevice.lastTSval ?? 0)
    }
}
