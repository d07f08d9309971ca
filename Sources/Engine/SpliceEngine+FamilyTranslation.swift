import Wire

/// Where a packet goes when its two sides are of different families: a device that reached an
/// IPv4 server through a service's IPv6 address (`--service [VIP6]:PORT=HOST4:PORT`), or one
/// that continued an IPv4 flow from an IPv6-only network after a migration, and the reverse.
/// The server-side sub-connection keeps its family; the device side has its own.
struct FamilyTranslation {
    var source: IPEndpoint
    var destination: IPEndpoint
    /// The receiver's MSS: pieces carry at most this less their options (RFC 6691 §2); the
    /// receiving side's header may be 20 bytes longer than the sender's.
    var mss: Int
}

extension SpliceEngine {
    /// Rewrites `packet`'s addresses and ports in place, or, when they are of the other family
    /// (a packet cannot change family in place), leaves them for `process` to send the packet
    /// again in that family once every other rewrite is done. `mss`: the receiver's, worked
    /// out only then (the per-packet path of a flow of one family does not pay for it).
    func setAddresses(_ packet: TCPIPPacket, source: IPEndpoint, destination: IPEndpoint, mss: @autoclosure () -> Int) {
        if packet.family == source.family {
            packet.setSource(source)
            packet.setDestination(destination)
        } else {
            pendingTranslation = FamilyTranslation(source: source, destination: destination, mss: mss())
        }
    }

    /// `bytes`, a TCP packet whose TCP header is already rewritten, sent again in the family of
    /// `t`'s endpoints (RFC 7915's header translation, for what TCP needs: the addresses, TTL
    /// as hop limit and back, the TOS byte as traffic class and back; DF set on IPv4, which an
    /// IPv6 sender's packets imply), its TCP header and payload as they were with the ports
    /// rewritten and the checksum made anew over the other pseudo-header; a super-segment in
    /// pieces of the receiver's MSS. `.consumed`: the pieces are in `generated`.
    func translateFamily(_ bytes: UnsafeMutableRawBufferPointer, _ t: FamilyTranslation, generated: PacketBatch) -> Verdict {
        guard let packet = try? TCPIPPacket(validating: bytes) else { return .drop(.truncated) }
        let tcp = packet.tcp
        var options: [TCPOption] = []
        for slot in tcp.options where slot.kind != TCPOptionKind.noOperation && slot.kind != TCPOptionKind.endOfList {
            options.append(.raw(Array(UnsafeRawBufferPointer(rebasing: tcp.bytes[slot.offset..<(slot.offset + slot.length)]))))
        }
        let optionBytes = options.reduce(0) { $0 + $1.encodedLength }
        emitPieces(of: packet, source: t.source, destination: t.destination, options: options,
                   pieceSize: max(t.mss - optionBytes, 64), generated: generated)
        counters.packetsTranslated &+= 1
        return .consumed
    }

    /// The address a device of `family` talks to for `flow`: the flow's own original when the
    /// device is of its family, else the service address of that family that leads to the
    /// same server (nil in transparent mode, where the device talks to the server itself).
    func original(_ flow: Flow, for family: IPFamily) -> IPEndpoint? {
        if family == flow.original.family { return flow.original }
        guard serviceByVIP[flow.original]?.target == flow.server else { return nil }
        return config.services.first { $0.vip.family == family && $0.target == flow.server }?.vip
    }
}
