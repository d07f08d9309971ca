/// Why bytes were refused as an RTP or RTCP packet. The raw values are drop-counter labels.
public enum RTPError: String, Error, Sendable, CaseIterable {
    case truncated = "truncated"
    case badVersion = "bad_rtp_version"
    case badExtension = "bad_rtp_extension_length"
    case badPadding = "bad_rtp_padding"
    case badRTCPLength = "bad_rtcp_length"
    case badRTCPPadding = "bad_rtcp_padding"
    case badRTCPCount = "bad_rtcp_report_count"
    case notRTCP = "not_rtcp"
}

/// The fixed header of an RTP packet (RFC 3550 §5.1) and where its payload lies, read from
/// bytes after every length was checked: once built, nothing about it can point outside the
/// packet. Holds values, not the bytes, so it costs nothing to keep.
public struct RTPHeader: Sendable, Equatable {
    public static let fixedLength = 12

    public let padding: Bool
    public let hasExtension: Bool
    public let csrcCount: Int
    public let marker: Bool
    public let payloadType: UInt8
    public let sequenceNumber: UInt16
    public let timestamp: UInt32
    public let ssrc: UInt32
    /// Fixed header, CSRC list and header extension (§5.3.1).
    public let headerLength: Int
    /// Padding octets at the end, the count octet included (§5.1 P).
    public let paddingLength: Int
    /// The payload's byte range within the packet (padding excluded).
    public let payloadRange: Range<Int>

    /// Checks version 2, that the CSRC list and extension fit, and that padding is at least one
    /// octet and no longer than what follows the header (§5.1, §5.3.1, Appendix A.1).
    public init(parsing bytes: UnsafeRawBufferPointer) throws(RTPError) {
        guard bytes.count >= RTPHeader.fixedLength else { throw .truncated }
        let b0 = bytes[0], b1 = bytes[1]
        guard b0 >> 6 == 2 else { throw .badVersion }
        padding = b0 & 0x20 != 0
        hasExtension = b0 & 0x10 != 0
        csrcCount = Int(b0 & 0x0F)
        marker = b1 & 0x80 != 0
        payloadType = b1 & 0x7F
        sequenceNumber = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        timestamp = RTPHeader.u32(bytes, 4)
        ssrc = RTPHeader.u32(bytes, 8)
        var length = RTPHeader.fixedLength + 4 * csrcCount
        guard bytes.count >= length else { throw .truncated }
        if hasExtension {
            // 16-bit profile-defined field, 16-bit length in 32-bit words (§5.3.1).
            guard bytes.count >= length + 4 else { throw .badExtension }
            let words = Int(bytes[length + 2]) << 8 | Int(bytes[length + 3])
            length += 4 + 4 * words
            guard bytes.count >= length else { throw .badExtension }
        }
        headerLength = length
        if padding {
            guard bytes.count > length, let count = bytes.last, count >= 1, Int(count) <= bytes.count - length else {
                throw .badPadding
            }
            paddingLength = Int(count)
        } else {
            paddingLength = 0
        }
        payloadRange = length..<(bytes.count - paddingLength)
    }

    public init(parsing bytes: [UInt8]) throws(RTPError) {
        let result: Result<RTPHeader, RTPError> = bytes.withUnsafeBytes { buf in
            do throws(RTPError) { return .success(try RTPHeader(parsing: buf)) } catch { return .failure(error) }
        }
        self = try result.get()
    }

    /// The CSRC identifiers (§5.1), read from the bytes this header was parsed from.
    public func csrcs(in bytes: [UInt8]) -> [UInt32] {
        guard bytes.count >= RTPHeader.fixedLength + 4 * csrcCount else { return [] }
        return bytes.withUnsafeBytes { buf in (0..<csrcCount).map { RTPHeader.u32(buf, 12 + 4 * $0) } }
    }

    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }
}

/// RTP sequence numbers compare modulo 2^16 (RFC 3550 §A.1): `a` is after `b` when the signed
/// 16-bit distance from `b` to `a` is positive.
public enum RTPSequence {
    public static func distance(from b: UInt16, to a: UInt16) -> Int16 { Int16(bitPattern: a &- b) }
    public static func isAfter(_ a: UInt16, _ b: UInt16) -> Bool { distance(from: b, to: a) > 0 }
}
