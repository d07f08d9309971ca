/// The pcapng blocks `PcapFileWriter` writes in its `.pcapng` format (draft-ietf-opsawg-pcapng,
/// "PCAP Now Generic"): one Section Header Block, one Interface Description Block, then one
/// Enhanced Packet Block per packet, each packet with its comments (`opt_comment`) when it has
/// any. Little-endian throughout (the byte-order magic says so, §4.1); every block and every
/// option is padded to 32 bits (§3.1, §3.5).
///
/// Invariants: the lengths computed here are the lengths the writer writes (a block's total
/// length opens and closes it, §3.1); a comment longer than `maximumCommentBytes` is cut at
/// a UTF-8 character boundary, so an option's length always fits its 16-bit field.
public enum PcapngBlock {
    /// Block types (§4.1, §4.2, §4.3).
    static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    static let interfaceDescriptionType: UInt32 = 1
    static let enhancedPacketType: UInt32 = 6
    /// Option codes: `opt_endofopt` and `opt_comment` (§3.5), `shb_userappl` (§4.1),
    /// `if_tsresol` (§4.2).
    static let endOfOptions: UInt16 = 0
    static let commentOption: UInt16 = 1
    static let userApplicationOption: UInt16 = 4
    static let timestampResolutionOption: UInt16 = 9
    /// The Enhanced Packet Block's fixed part: type, length, interface, timestamp (2 words),
    /// captured and original lengths (§4.3).
    static let enhancedPacketHeaderLength = 28
    /// Longest comment kept, in bytes of UTF-8.
    public static let maximumCommentBytes = 4096

    /// `count` rounded up to a multiple of 4.
    static func padded(_ count: Int) -> Int { (count + 3) & ~3 }

    /// The Section Header Block: version 1.0, section length unknown (-1), and the application
    /// that wrote the file (`shb_userappl`).
    static func sectionHeader(application: String) -> [UInt8] {
        var body: [UInt8] = []
        append32(&body, 0x1A2B_3C4D)            // byte-order magic
        append16(&body, 1); append16(&body, 0)  // major, minor version
        append32(&body, 0xFFFF_FFFF); append32(&body, 0xFFFF_FFFF) // section length: not given
        appendOption(&body, userApplicationOption, Array(application.utf8))
        appendEndOfOptions(&body)
        return block(sectionHeaderType, body)
    }

    /// The Interface Description Block of the one interface: its link type, snap length, and
    /// nanosecond timestamps (`if_tsresol` 9: 10^-9 s).
    static func interfaceDescription(linkType: UInt32, snapLength: Int) -> [UInt8] {
        var body: [UInt8] = []
        append16(&body, UInt16(truncatingIfNeeded: linkType))
        append16(&body, 0)                      // reserved
        append32(&body, UInt32(clamping: snapLength))
        appendOption(&body, timestampResolutionOption, [9])
        appendEndOfOptions(&body)
        return block(interfaceDescriptionType, body)
    }

    /// The options of an Enhanced Packet Block carrying `comments` (empty: no options at all),
    /// ready to follow the padded packet data.
    static func packetOptions(comments: [String]) -> [UInt8] {
        guard !comments.isEmpty else { return [] }
        var out: [UInt8] = []
        for comment in comments { appendOption(&out, commentOption, commentBytes(comment)) }
        appendEndOfOptions(&out)
        return out
    }

    /// The total length of an Enhanced Packet Block with `frameLength` captured bytes and
    /// options of `optionsLength` bytes (§4.3): header, padded data, options, closing length.
    static func enhancedPacketLength(frameLength: Int, optionsLength: Int) -> Int {
        enhancedPacketHeaderLength + padded(frameLength) + optionsLength + 4
    }

    /// A comment's UTF-8 bytes, cut to `maximumCommentBytes` without splitting a character.
    static func commentBytes(_ comment: String) -> [UInt8] {
        let bytes = Array(comment.utf8)
        guard bytes.count > maximumCommentBytes else { return bytes }
        var cut = maximumCommentBytes
        // Back over continuation bytes (10xxxxxx) to the start of the cut character.
        while cut > 0 && bytes[cut] & 0xC0 == 0x80 { cut -= 1 }
        return Array(bytes[..<cut])
    }

    // MARK: Encoding

    private static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let total = UInt32(12 + body.count)
        var out: [UInt8] = []
        out.reserveCapacity(Int(total))
        append32(&out, type)
        append32(&out, total)
        out += body
        append32(&out, total)
        return out
    }

    private static func appendOption(_ out: inout [UInt8], _ code: UInt16, _ value: [UInt8]) {
        append16(&out, code)
        append16(&out, UInt16(value.count))
        out += value
        out += [UInt8](repeating: 0, count: padded(value.count) - value.count)
    }

    private static func appendEndOfOptions(_ out: inout [UInt8]) {
        append16(&out, endOfOptions)
        append16(&out, 0)
    }

    static func append16(_ out: inout [UInt8], _ v: UInt16) {
        out += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)]
    }

    static func append32(_ out: inout [UInt8], _ v: UInt32) {
        append16(&out, UInt16(truncatingIfNeeded: v))
        append16(&out, UInt16(truncatingIfNeeded: v >> 16))
    }
}
