import Wire

/// Helpers of the splice itself, which migrations use too: packets the engine makes
/// (`generated`) and in-place option rewrites (RFC 7323 timestamps, options a device did
/// not negotiate).
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

    /// Builds a packet into `generated`; counted as an overflow when it has no room.
    func emit(_ spec: TCPPacketSpec, payload: [UInt8] = [], generated: PacketBatch) {
        guard generated.count < generated.capacity else { counters.generatedOverflow &+= 1; return }
        let n = payload.withUnsafeBytes { p in TCPPacketBuilder.write(spec, payload: p, into: generated.slotBuffer(generated.count)) }
        guard let n else { counters.generatedOverflow &+= 1; return }
        generated.commitNext(length: n, direction: .outbound)
        counters.packetsGenerated &+= 1
    }
}
