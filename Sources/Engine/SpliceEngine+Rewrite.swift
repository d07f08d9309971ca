import Wire

/// Packets the splice makes or rewrites beyond NAT and sequence offsets, which migrations
/// use too: packets built into `generated` (RSTs, pieces of a segment too big for the device),
/// SACK blocks remapped, and in-place option rewrites (RFC 7323 timestamps, options a device
/// did not negotiate).
extension SpliceEngine {
    /// Shifts the timestamp option's TSval and TSecr (RFC 7323 §5.3: the receiver's PAWS check
    /// must never see time go back after a migration changed the clock behind the flow).
    func shiftTimestamp(_ tcp: TCPSegment, valueBy: UInt32, echoBy: UInt32) {
        let options = tcp.options
        guard let (slot, value) = options.first(kind: TCPOptionKind.timestamp),
              case .timestamp(let v, let e) = value else { return }
        options.setTimestamp(slot, value: v &+ valueBy, echoReply: e &- echoBy)
    }

    /// Overwrites every option of `kind` with NOPs (DESIGN §5: what the device did not negotiate).
    func neutraliseOptions(_ tcp: TCPSegment, kind: UInt8) {
        let options = tcp.options
        for slot in options where slot.kind == kind { options.neutralise(slot) }
    }

    /// Builds a packet into `generated`; counted as an overflow when it has no room. A packet
    /// without DF and without an identification gets one (RFC 6864 §4.2: a datagram that may
    /// be fragmented needs an ID unique among its recent ones); an atomic one keeps 0 (§4.1).
    func emit(_ spec: TCPPacketSpec, payload: [UInt8] = [], generated: PacketBatch) {
        guard generated.count < generated.capacity else { counters.generatedOverflow &+= 1; return }
        var spec = spec
        // Toward a server over IPv6: the flow label its sub-connection has always had.
        if spec.source.family == .ipv6, config.isNAT(spec.source.address), let s = table.slot(natPort: spec.source.port),
           let label = table[slot: s]?.serverFlowLabel, label != Flow.flowLabelUnknown {
            spec.flowLabel = label
        }
        if !spec.dontFragment && spec.identification == 0 {
            spec.identification = UInt16(counters.packetsGenerated % 65_535) + 1 // 1...65535, in turn
        }
        let n = payload.withUnsafeBytes { p in TCPPacketBuilder.write(spec, payload: p, into: generated.slotBuffer(generated.count)) }
        guard let n else { counters.generatedOverflow &+= 1; return }
        generated.commitNext(length: n, direction: .outbound)
        counters.packetsGenerated &+= 1
    }

    /// Splits a segment larger than the device's MSS (DESIGN §5) into MSS-sized segments in
    /// `generated`; the original is not written. FIN and PSH go on the last piece only.
    func splitForDevice(_ packet: TCPIPPacket, mss: Int, generated: PacketBatch) -> Verdict {
        let tcp = packet.tcp
        let options = tcp.options
        var optionValues: [TCPOption] = []
        for slot in options where slot.kind != TCPOptionKind.noOperation && slot.kind != TCPOptionKind.endOfList {
            optionValues.append(.raw(Array(UnsafeRawBufferPointer(rebasing: tcp.bytes[slot.offset..<(slot.offset + slot.length)]))))
        }
        emitPieces(of: packet, options: optionValues, pieceSize: mss, generated: generated)
        counters.segmentsSplit &+= 1
        return .consumed
    }

    /// `packet`'s payload as segments of at most `pieceSize` bytes in `generated`, each with
    /// `options` and the packet's addresses, ack, window, TTL, DF, IP ID and TOS; FIN and PSH on
    /// the last piece only. A segment without payload goes out as one packet. With URG, the
    /// pieces that hold urgent data keep it, their pointer still ending where the packet's
    /// did (RFC 9293 §3.8.5, RFC 6093 §2); the pieces after it carry none. `source` and
    /// `destination` replace the packet's addresses (by default the ones a translation to the
    /// other family waits with, else the packet's own).
    func emitPieces(of packet: TCPIPPacket, source: IPEndpoint? = nil, destination: IPEndpoint? = nil,
                    options: [TCPOption], pieceSize: Int, generated: PacketBatch) {
        let source = source ?? pendingTranslation?.source ?? packet.source
        let destination = destination ?? pendingTranslation?.destination ?? packet.destination
        let tcp = packet.tcp
        let payload = Array(UnsafeRawBufferPointer(tcp.payload))
        let urgentEnd = tcp.flags.contains(.urg) ? Int(tcp.urgentPointer) : 0
        var offset = 0
        repeat {
            let n = min(pieceSize, payload.count - offset)
            var flags = tcp.flags
            if offset + n < payload.count { flags.remove(.fin); flags.remove(.psh) }
            // The packet's own IP header: its TTL, TOS and DF; without DF each piece needs an ID of
            // its own (RFC 6864 §4.2), the first keeps the packet's.
            let dontFragment = packet.dontFragment
            var spec = TCPPacketSpec(source: source, destination: destination, seq: tcp.seq + UInt32(offset),
                                     ack: tcp.ack, flags: flags, window: tcp.window, options: options,
                                     ttl: packet.ttl,
                                     identification: dontFragment ? packet.identification
                                                                  : packet.identification &+ UInt16(truncatingIfNeeded: offset / max(pieceSize, 1)),
                                     dontFragment: dontFragment, tos: packet.tos)
            if urgentEnd > offset {
                spec.urgentPointer = UInt16(urgentEnd - offset)
            } else {
                spec.flags.remove(.urg)
            }
            emit(spec, payload: Array(payload[offset..<(offset + n)]), generated: generated)
            offset += n
        } while offset < payload.count
    }

    /// SACK blocks (RFC 2018 §3) shifted by `offset`.
    func remapSACK(_ tcp: TCPSegment, _ offset: SequenceOffset) {
        let options = tcp.options
        for slot in options where slot.kind == TCPOptionKind.sack {
            guard let n = options.sackBlockCount(slot) else { continue }
            for i in 0..<n {
                let (l, r) = options.sackBlock(slot, i)
                options.setSackBlock(slot, i, offset.apply(l), offset.apply(r))
            }
        }
    }

    /// A RST answering `packet` toward its sender (RFC 9293 §3.10.7.1).
    func sendReset(answering packet: TCPIPPacket, generated: PacketBatch) {
        let tcp = packet.tcp
        var spec = TCPPacketSpec(source: packet.destination, destination: packet.source, window: 0)
        if tcp.flags.contains(.ack) {
            spec.seq = tcp.ack
            spec.flags = .rst
        } else {
            spec.ack = tcp.seq + tcp.sequenceLength
            spec.flags = [.rst, .ack]
        }
        let slot = generated.count
        guard slot < generated.capacity,
              let n = TCPPacketBuilder.write(spec, payload: UnsafeRawBufferPointer(start: nil, count: 0),
                                             into: generated.slotBuffer(slot)) else { return }
        generated.commitNext(length: n, direction: .outbound)
        counters.packetsGenerated &+= 1
    }
}
