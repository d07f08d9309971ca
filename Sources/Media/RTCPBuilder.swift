/// Builds the RTCP packets the proxy sends itself (RFC 3550 §6.4.2, §6.6): a BYE that ends the
/// old player's stream after a switch, and receiver reports (for the proxy's own reporting and
/// for tests). Lengths are in 32-bit words minus one (§6.4.1); BYE reasons are padded with zeros
/// to a word boundary.
public enum RTCPBuilder {
    /// A BYE for `sources` (at most 31) with an optional reason (at most 255 bytes, cut there).
    public static func bye(sources: [UInt32], reason: String? = nil) -> [UInt8] {
        let ids = Array(sources.prefix(31))
        var body: [UInt8] = []
        for id in ids { append32(id, to: &body) }
        if let reason {
            let text = Array(reason.utf8.prefix(255))
            body.append(UInt8(text.count))
            body += text
            while body.count % 4 != 0 { body.append(0) }
        }
        return header(count: ids.count, type: RTCPPacket.typeBYE, bodyLength: body.count) + body
    }

    /// An RR from `ssrc` with up to 31 report blocks.
    public static func receiverReport(ssrc: UInt32, reports: [RTCPReportBlock]) -> [UInt8] {
        let blocks = Array(reports.prefix(31))
        var body: [UInt8] = []
        append32(ssrc, to: &body)
        for r in blocks {
            append32(r.ssrc, to: &body)
            append32(UInt32(r.fractionLost) << 24 | UInt32(bitPattern: r.cumulativeLost) & 0x00FF_FFFF, to: &body)
            append32(r.extendedHighestSequence, to: &body)
            append32(r.jitter, to: &body)
            append32(r.lastSenderReport, to: &body)
            append32(r.delaySinceLastSenderReport, to: &body)
        }
        return header(count: blocks.count, type: RTCPPacket.typeRR, bodyLength: body.count) + body
    }

    private static func header(count: Int, type: UInt8, bodyLength: Int) -> [UInt8] {
        let words = (4 + bodyLength) / 4 - 1
        return [0x80 | UInt8(count & 0x1F), type, UInt8(words >> 8), UInt8(words & 0xFF)]
    }

    private static func append32(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }
}
