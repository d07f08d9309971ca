/// The video codecs whose GOP boundaries the proxy can find (SMP draft §5.4).
public enum VideoCodec: String, Sendable, Equatable, CaseIterable {
    /// H.264 over RTP (RFC 6184).
    case h264 = "H264"
    /// MPEG-4 Part 2 Visual over RTP (RFC 6416, "MP4V-ES").
    case mpeg4Visual = "MP4V-ES"

    /// From an SDP rtpmap encoding name (case-insensitive, RFC 4566 §6).
    public init?(encodingName: String) {
        switch encodingName.uppercased() {
        case "H264": self = .h264
        case "MP4V-ES": self = .mpeg4Visual
        default: return nil
        }
    }
}

/// What one RTP packet's payload says about the start of a picture: whether it begins a coded
/// picture that can be decoded on its own (an IDR picture, an I-VOP), one that cannot, or only
/// headers (parameter sets, configuration) that precede a picture.
enum PayloadStart: Equatable {
    /// Nothing starts here (a middle or last fragment, or units the proxy ignores).
    case nothing
    /// Parameter sets or configuration headers, and no picture yet in this packet.
    case configuration
    /// The first picture data in this packet belongs to a picture decodable on its own.
    case independentPicture
    /// The first picture data in this packet belongs to a picture that needs earlier ones.
    case dependentPicture
}

/// H.264 NAL unit types (RFC 6184 §5.2, ITU-T H.264 Table 7-1) and how a packet's payload is
/// read: single NAL unit packets (1-23), STAP-A (24, §5.7.1), FU-A (28, §5.8); STAP-B, MTAP
/// and FU-B belong to the interleaved mode and are treated as carrying no picture start.
enum H264Payload {
    static let idrSlice: UInt8 = 5, sps: UInt8 = 7, pps: UInt8 = 8, accessUnitDelimiter: UInt8 = 9
    static let stapA: UInt8 = 24, fuA: UInt8 = 28

    /// A NAL unit that starts in a payload: its type and the byte after its header (nil when
    /// absent or, for FU-A, not in view).
    struct UnitStart: Equatable {
        let type: UInt8
        let firstPayloadByte: UInt8?
    }

    /// Calls `body` with each NAL unit that starts in this payload, in order (at most `limit`),
    /// until it returns false. Allocates nothing: it runs on every packet of a migrating session.
    static func forEachStartingUnit(_ p: UnsafeRawBufferPointer, limit: Int = 64, _ body: (UnitStart) -> Bool) {
        guard let first = p.first else { return }
        let type = first & 0x1F
        switch type {
        case 1...23:
            _ = body(UnitStart(type: type, firstPayloadByte: p.count > 1 ? p[1] : nil))
        case stapA:
            // STAP-A: one header byte, then (16-bit size, NAL unit) pairs (§5.7.1).
            var i = 1
            var count = 0
            while i + 2 < p.count, count < limit {
                let size = Int(p[i]) << 8 | Int(p[i + 1])
                guard size > 0, i + 2 + size <= p.count else { return }
                guard body(UnitStart(type: p[i + 2] & 0x1F, firstPayloadByte: size > 1 ? p[i + 3] : nil)) else { return }
                i += 2 + size
                count += 1
            }
        case fuA:
            // FU indicator, then FU header S|E|R|type (§5.8): a unit starts when S is set.
            guard p.count >= 2, p[1] & 0x80 != 0 else { return }
            _ = body(UnitStart(type: p[1] & 0x1F, firstPayloadByte: nil))
        default:
            return
        }
    }

    /// The first picture data decides; before it, parameter sets (SPS, PPS) or an access unit
    /// delimiter announcing intra slices only (primary_pic_type 0 "I" or 5 "I, SI", H.264
    /// §7.4.2.4) make the packet a configuration packet of a possibly independent picture. A
    /// delimiter announcing other slice types says the picture depends on others.
    static func classify(_ p: UnsafeRawBufferPointer) -> PayloadStart {
        var sawConfiguration = false
        var picture: PayloadStart?
        forEachStartingUnit(p) { unit in
            switch unit.type {
            case idrSlice: picture = .independentPicture
            case 1...4: picture = .dependentPicture
            case sps, pps: sawConfiguration = true
            case accessUnitDelimiter:
                guard let byte = unit.firstPayloadByte else { return true }
                let primaryPictureType = byte >> 5
                if primaryPictureType == 0 || primaryPictureType == 5 { sawConfiguration = true } else { picture = .dependentPicture }
            default: break
            }
            return picture == nil
        }
        return picture ?? (sawConfiguration ? .configuration : .nothing)
    }
}

/// MPEG-4 Part 2 start codes (ISO/IEC 14496-2 §6.2.1, Table 6-3) and how a payload is read per
/// RFC 6416 §5.1: configuration headers (VOS 0xB0, VO 0x00-0x1F, VOL 0x20-0x2F, visual object
/// 0xB5, GOV 0xB3) may precede a VOP (0xB6), whose first two bits after the start code are
/// vop_coding_type (0 = I, 1 = P, 2 = B, 3 = S).
enum MPEG4Payload {
    static let vop: UInt8 = 0xB6

    static func isConfiguration(_ code: UInt8) -> Bool {
        code <= 0x2F || code == 0xB0 || code == 0xB3 || code == 0xB5
    }

    static func classify(_ p: UnsafeRawBufferPointer, scanLimit: Int = 4_096) -> PayloadStart {
        var sawConfiguration = false
        var i = 0
        let end = min(p.count, scanLimit)
        while i + 3 < end {
            if p[i] == 0, p[i + 1] == 0, p[i + 2] == 1 {
                let code = p[i + 3]
                if code == vop {
                    guard i + 4 < p.count else { return sawConfiguration ? .configuration : .nothing }
                    return p[i + 4] >> 6 == 0 ? .independentPicture : .dependentPicture
                }
                if isConfiguration(code) { sawConfiguration = true }
                i += 4
            } else if i == 0 && !sawConfiguration {
                // A payload that does not open with a start code continues a fragmented VOP.
                return .nothing
            } else {
                i += 1
            }
        }
        return sawConfiguration ? .configuration : .nothing
    }
}
