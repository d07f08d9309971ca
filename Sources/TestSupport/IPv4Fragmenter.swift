import Wire

/// Cuts an IPv4 datagram into fragments as a router does (RFC 791 §3.2): each piece gets the
/// datagram's header with its own total length, offset (in 8-byte units) and MF flag, and a
/// new header checksum. `sizes` are the payload bytes of every piece but the last (multiples
/// of 8); the last takes what is left. Traps on sizes that do not fit (test tables are literals).
public func ipv4Fragments(_ datagram: [UInt8], sizes: [Int]) -> [[UInt8]] {
    let ihl = Int(datagram[0] & 0x0F) * 4
    let payload = Array(datagram[ihl...])
    var pieces: [[UInt8]] = []
    var offset = 0
    for (k, size) in (sizes + [payload.count - sizes.reduce(0, +)]).enumerated() {
        precondition(size >= 0 && offset + size <= payload.count && (k == sizes.count || size % 8 == 0))
        var p = Array(datagram[0..<ihl]) + payload[offset..<offset + size]
        let total = p.count
        p[2] = UInt8(total >> 8); p[3] = UInt8(total & 0xFF)
        let more: UInt16 = k < sizes.count ? 0x2000 : 0
        let field = UInt16(datagram[6] & 0x40) << 8 | more | UInt16(offset / 8)
        p[6] = UInt8(field >> 8); p[7] = UInt8(field & 0xFF)
        refillIPv4HeaderChecksum(&p)
        pieces.append(p)
        offset += size
    }
    return pieces
}

/// Recomputes an IPv4 header's checksum in place.
public func refillIPv4HeaderChecksum(_ p: inout [UInt8]) {
    let ihl = Int(p[0] & 0x0F) * 4
    p[10] = 0; p[11] = 0
    let sum = p.withUnsafeBytes { InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<ihl])) }
    p[10] = UInt8(sum >> 8); p[11] = UInt8(sum & 0xFF)
}
