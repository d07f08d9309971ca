/// The TCP header inside an ICMP error's quote (RFC 792 for ICMPv4, RFC 4443 §2.4 (c) for
/// ICMPv6), whichever IP version quoted it: the first 8 bytes (ports, sequence number) are
/// always there; the ack and the checksum only when the quote reaches them (`hasAck`,
/// `hasChecksum`). `QuotedTCPv4` and `QuotedTCPv6` add their IP headers around it.
///
/// Invariant: `offset + 8 <= bytes.count` (the quote views check it before making one).
/// Setters keep the quoted TCP checksum right when it was quoted (RFC 1624, incrementally:
/// the quoted payload is partial, so it could not be summed again).
struct QuotedTCPHeader {
    let bytes: UnsafeMutableRawBufferPointer
    /// Where the TCP header starts in `bytes`.
    let offset: Int

    typealias Field = TCPSegment.Field

    var sourcePort: UInt16 { bytes.u16(offset + Field.sourcePort) }
    var destinationPort: UInt16 { bytes.u16(offset + Field.destinationPort) }
    var seq: SeqNumber { SeqNumber(bytes.u32(offset + Field.seq)) }
    var hasAck: Bool { offset + Field.ack + 4 <= bytes.count }
    var ack: SeqNumber? { hasAck ? SeqNumber(bytes.u32(offset + Field.ack)) : nil }
    var flags: TCPFlags? { offset + Field.flags < bytes.count ? TCPFlags(rawValue: bytes[offset + Field.flags]) : nil }
    var hasChecksum: Bool { offset + Field.checksum + 2 <= bytes.count }

    func setSourcePort(_ port: UInt16) { set16(Field.sourcePort, port) }
    func setDestinationPort(_ port: UInt16) { set16(Field.destinationPort, port) }
    func setSeq(_ s: SeqNumber) { set32(Field.seq, s.rawValue) }
    /// Sets the ack when it was quoted; nothing otherwise.
    func setAck(_ s: SeqNumber) {
        guard hasAck else { return }
        set32(Field.ack, s.rawValue)
    }

    /// Keeps the quoted checksum right for a change elsewhere that it covers (an address of
    /// the pseudo-header), when it was quoted.
    func fixChecksum(_ update: (UInt16) -> UInt16) {
        guard hasChecksum else { return }
        let at = offset + Field.checksum
        bytes.setU16(at, update(bytes.u16(at)))
    }

    private func set16(_ field: Int, _ v: UInt16) {
        let old = bytes.u16(offset + field)
        guard old != v else { return }
        bytes.setU16(offset + field, v)
        fixChecksum { InternetChecksum.update($0, old: old, new: v) }
    }
    private func set32(_ field: Int, _ v: UInt32) {
        let old = bytes.u32(offset + field)
        guard old != v else { return }
        bytes.setU32(offset + field, v)
        fixChecksum { InternetChecksum.update($0, old: old, new: v) }
    }
}
