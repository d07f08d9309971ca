/// One media description of a session description (RFC 4566 §5.14): the "m=" line and the
/// lines under it, with the attributes the proxy reads: rtpmap and fmtp (RFC 4566 §6), control
/// (RFC 2326 §C.1.1), and the codec parameters of H.264 (RFC 6184 §8.1) and MPEG-4 Visual
/// (RFC 6416 §7.1).
public struct MediaDescription: Sendable, Equatable {
    /// "video", "audio", ...
    public let mediaType: String
    public let port: UInt16
    /// "RTP/AVP", ...
    public let transportProtocol: String
    /// RTP payload types for RTP/AVP (RFC 3551).
    public let formats: [String]
    /// The m= line and the lines under it, as received.
    public private(set) var lines: [SessionDescription.Line]

    init(mLine: String, lineNumber: Int) throws(SDPError) {
        // m=<media> <port>[/<number of ports>] <proto> <fmt> ... (§5.14)
        let parts = mLine.split(separator: " ")
        guard parts.count >= 4 else { throw SDPError(line: lineNumber, reason: "m= needs media, port, protocol and formats") }
        let portText = parts[1].split(separator: "/").first ?? ""
        guard let port = RTSPSyntax.decimal(portText, maxDigits: 5), port <= 65_535 else {
            throw SDPError(line: lineNumber, reason: "bad port \"\(parts[1])\"")
        }
        mediaType = String(parts[0]); self.port = UInt16(port)
        transportProtocol = String(parts[2]); formats = parts.dropFirst(3).map(String.init)
        lines = [SessionDescription.Line(type: "m", value: mLine)]
    }

    mutating func append(_ line: SessionDescription.Line) { lines.append(line) }

    /// a=control (RFC 2326 §C.1.1): the URL (often relative) to SETUP this stream with.
    public var control: String? { SessionDescription.attribute("control", in: lines) }

    /// Every a=rtpmap of this media (RFC 4566 §6): "<payload type> <encoding name>/<clock rate>[/<parameters>]".
    public var rtpMaps: [RTPMap] {
        lines.compactMap { line -> RTPMap? in
            guard line.type == "a" else { return nil }
            let (name, value) = SessionDescription.splitAttribute(line.value)
            guard name == "rtpmap", let value else { return nil }
            return RTPMap(value)
        }
    }

    /// The a=fmtp parameters of `payloadType` (RFC 4566 §6), split at ";" into name=value pairs.
    public func formatParameters(_ payloadType: UInt8) -> [String: String] {
        var out: [String: String] = [:]
        for line in lines where line.type == "a" {
            let (name, value) = SessionDescription.splitAttribute(line.value)
            guard name == "fmtp", let value, let space = value.firstIndex(of: " "),
                  RTSPSyntax.decimal(value[..<space], maxDigits: 3) == Int(payloadType) else { continue }
            for item in value[value.index(after: space)...].split(separator: ";") {
                let trimmed = RTSPSyntax.trim(item)
                if let eq = trimmed.firstIndex(of: "=") {
                    out[String(trimmed[..<eq]).lowercased()] = String(trimmed[trimmed.index(after: eq)...])
                } else if !trimmed.isEmpty {
                    out[String(trimmed).lowercased()] = ""
                }
            }
        }
        return out
    }

    /// The first format's payload type, when it is a number (RTP/AVP).
    public var firstPayloadType: UInt8? {
        formats.first.flatMap { RTSPSyntax.decimal($0, maxDigits: 3) }.flatMap { $0 <= 127 ? UInt8($0) : nil }
    }

    /// The codec of the first format, as `tsmp flows` shows it: the rtpmap encoding name, or the
    /// name of a static payload type (RFC 3551 §6 Tables 4 and 5).
    public var codecName: String? {
        guard let pt = firstPayloadType else { return nil }
        if let map = rtpMaps.first(where: { $0.payloadType == pt }) { return map.encodingName }
        return RTPMap.staticPayloadNames[pt]
    }

    /// The first format's clock rate (Hz).
    public var clockRate: Int? {
        guard let pt = firstPayloadType else { return nil }
        return rtpMaps.first { $0.payloadType == pt }?.clockRate ?? (mediaType == "video" ? 90_000 : nil)
    }

    /// The video codec for GOP detection, when it is one this module knows.
    public var videoCodec: VideoCodec? { codecName.flatMap { VideoCodec(encodingName: $0) } }

    /// H.264 fmtp parameters (RFC 6184 §8.1) of the first format.
    public var h264: H264FormatParameters? {
        guard videoCodec == .h264, let pt = firstPayloadType else { return nil }
        return H264FormatParameters(formatParameters(pt))
    }

    /// MPEG-4 Visual fmtp parameters (RFC 6416 §7.1) of the first format.
    public var mpeg4: MPEG4VisualFormatParameters? {
        guard videoCodec == .mpeg4Visual, let pt = firstPayloadType else { return nil }
        return MPEG4VisualFormatParameters(formatParameters(pt))
    }

    /// This stream's control URL resolved against `base` (Content-Base, else the DESCRIBE URL).
    public func controlURL(base: String) -> String? {
        guard let control, let url = RTSPURL(base) else { return nil }
        return url.resolving(control)
    }
}

/// An a=rtpmap value (RFC 4566 §6).
public struct RTPMap: Sendable, Equatable {
    public let payloadType: UInt8
    public let encodingName: String
    public let clockRate: Int
    public let encodingParameters: String?

    init?(_ value: String) {
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let pt = RTSPSyntax.decimal(parts[0], maxDigits: 3), pt <= 127 else { return nil }
        let encoding = RTSPSyntax.trim(parts[1]).split(separator: "/", omittingEmptySubsequences: false)
        guard encoding.count >= 2, !encoding[0].isEmpty, let rate = RTSPSyntax.decimal(encoding[1], maxDigits: 9) else { return nil }
        payloadType = UInt8(pt); encodingName = String(encoding[0]); clockRate = rate
        encodingParameters = encoding.count > 2 ? encoding[2...].joined(separator: "/") : nil
    }

    /// Static payload types of RFC 3551 §6 (Tables 4 and 5) a video proxy may meet.
    static let staticPayloadNames: [UInt8: String] = [
        0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 10: "L16", 11: "L16", 14: "MPA",
        15: "G728", 18: "G729", 26: "JPEG", 31: "H261", 32: "MPV", 33: "MP2T", 34: "H263",
    ]
}

/// H.264 media type parameters (RFC 6184 §8.1).
public struct H264FormatParameters: Sendable, Equatable {
    /// 0: single NAL unit mode, 1: non-interleaved (STAP-A, FU-A), 2: interleaved (§6.2-§6.4).
    public var packetizationMode: Int
    public var profileLevelID: String?
    /// The SPS and PPS NAL units, base64-decoded; nil when absent or not valid base64.
    public var parameterSets: [[UInt8]]?

    init(_ p: [String: String]) {
        packetizationMode = p["packetization-mode"].flatMap { RTSPSyntax.decimal($0, maxDigits: 1) } ?? 0
        profileLevelID = p["profile-level-id"]
        if let sets = p["sprop-parameter-sets"] {
            let decoded = sets.split(separator: ",").map { Base64.decode($0) }
            parameterSets = decoded.contains { $0 == nil || $0?.isEmpty == true } ? nil : decoded.compactMap { $0 }
        }
    }

    /// nal_unit_type of each parameter set (7 SPS, 8 PPS; RFC 6184 §1.3).
    public var parameterSetTypes: [UInt8] { (parameterSets ?? []).compactMap { $0.first.map { $0 & 0x1F } } }
}

/// MPEG-4 Visual media type parameters (RFC 6416 §7.1): profile and the configuration
/// (VOS/VO/VOL headers) as hexadecimal.
public struct MPEG4VisualFormatParameters: Sendable, Equatable {
    public var profileLevelID: Int?
    public var config: [UInt8]?

    init(_ p: [String: String]) {
        profileLevelID = p["profile-level-id"].flatMap { RTSPSyntax.decimal($0, maxDigits: 3) }
        if let hex = p["config"], hex.utf8.count % 2 == 0 {
            var bytes: [UInt8] = []
            var high: UInt8?
            for c in hex.utf8 {
                guard let d = RTSPSyntax.hexDigit(c) else { bytes = []; high = nil; break }
                if let h = high { bytes.append(h << 4 | d); high = nil } else { high = d }
            }
            config = bytes.isEmpty ? nil : bytes
        }
    }

    /// The config starts with a visual object sequence start code 00 00 01 B0 (ISO/IEC 14496-2 §6.2.2).
    public var configStartsWithVOS: Bool { config.map { Array($0.prefix(4)) == [0, 0, 1, 0xB0] } ?? false }
}
