import Wire

/// IPv4 fragments of managed flows (RFC 791 §3.2): put back together (`IPv4Reassembly`)
/// before anything else looks at them, so the whole TCP segment is routed to its shard and
/// rewritten as any other, and no piece leaves with the device's own address.
extension SpliceEngine {
    /// Replaces, in `batch`, each IPv4 datagram's last-arriving fragment with the whole
    /// datagram and marks the other fragments dropped (held, or dropped for a reason that is
    /// counted). Call before routing packets to shards (a later fragment carries no ports);
    /// `process(_:now:generated:)` calls it too, and a batch without fragments costs one look
    /// at each packet's flags.
    public func reassembleFragments(_ batch: PacketBatch, now: Instant) {
        // Datagrams past their time are given up by `expire(now:)` (every ~100 ms), not here.
        for i in 0..<batch.count where !batch.dropped[i] && HeaderPeek(UnsafeRawBufferPointer(batch.packet(i))).isIPv4Fragment {
            let bytes = batch.packet(i)
            // Only what the policy rules steer here (TCP, ICMP); process() counts why the rest goes.
            guard let packet = try? IPv4Packet(validating: bytes),
                  packet.protocolNumber == 6 || packet.protocolNumber == 1 else { continue }
            counters.packetsIn &+= 1
            counters.bytesIn &+= UInt64(bytes.count)
            if config.verifyChecksums && !packet.verifyHeaderChecksum {
                counters[.badIPChecksum] &+= 1
                batch.markDropped(i)
                continue
            }
            switch reassembly.add(packet, now: now) {
            case .held:
                batch.markDropped(i)
            case .dropped(let reason):
                counters[reason] &+= 1
                batch.markDropped(i)
            case .complete(let datagram):
                counters.fragmentsReassembled &+= UInt64(reassembly.lastPieces)
                counters.datagramsReassembled &+= 1
                // The whole datagram is counted in again when it is processed.
                counters.packetsIn &-= 1
                counters.bytesIn &-= UInt64(bytes.count)
                let fits = datagram.withUnsafeBytes { batch.replace(i, with: $0) }
                if !fits {
                    counters[.fragmentLimit] &+= 1
                    batch.markDropped(i)
                }
            }
        }
    }

    /// Gives up datagrams held longer than `IPv4Reassembly.timeout`, counted as `fragment_timeout`.
    func expireFragments(now: Instant) {
        counters[.fragmentTimeout] &+= UInt64(reassembly.expire(now: now))
    }

    /// IPv4 datagrams waiting for fragments, and the bytes they hold.
    public var fragmentsPending: (datagrams: Int, bytes: Int) { (reassembly.datagramsHeld, reassembly.bytesHeld) }
}
