/// Finds the first RTP packet of each group of pictures in one video stream (SMP draft §5.4:
/// switch "right before the first packet of a GOP" so the new device can decode from its first
/// packet on).
///
/// Access units: packets with one RTP timestamp form one access unit (RFC 6184 §5.1, RFC 6416
/// §5.1: all packets of a picture carry its sampling time); a packet after one with the marker
/// bit set also starts a new one. A GOP starts with the access unit of an IDR picture (H.264)
/// or an I-VOP (MPEG-4 Part 2); the first packet of that access unit is reported, including when
/// it only holds parameter sets (SPS/PPS, in their own packets or a STAP-A), an access unit
/// delimiter announcing intra slices, or configuration headers (VOS/VOL/GOV) that precede the
/// picture in the same access unit.
///
/// Invariants:
/// - `observe` says true at most once per access unit, and only before the unit's first
///   picture data was seen; a packet older than the newest one seen (reordered or duplicated)
///   changes nothing and is never a GOP start.
/// - A unit whose configuration-only first packet was reported but whose first picture turns out
///   to depend on others is counted in `unconfirmedStarts` (a stream that repeats parameter sets
///   before ordinary pictures); a switch made there shows up in that count.
/// - Payloads are read within their bounds only; any bytes are safe.
public struct GOPBoundaryDetector: Sendable {
    public let codec: VideoCodec
    public private(set) var accessUnits = 0
    public private(set) var gopStarts = 0
    public private(set) var unconfirmedStarts = 0

    private var newestSequence: UInt16?
    private var currentTimestamp: UInt32?
    private var previousMarker = false
    /// The current unit was reported as a GOP start.
    private var reported = false
    /// The current unit's first picture data was seen.
    private var sawPicture = false

    public init(codec: VideoCodec) { self.codec = codec }

    /// Whether the packet with `header` and `payload` (its payload bytes, padding excluded) is
    /// the first packet of a new GOP.
    public mutating func observe(_ header: RTPHeader, payload: UnsafeRawBufferPointer) -> Bool {
        if let newest = newestSequence, !RTPSequence.isAfter(header.sequenceNumber, newest) { return false }
        newestSequence = header.sequenceNumber
        if currentTimestamp != header.timestamp || previousMarker {
            currentTimestamp = header.timestamp
            accessUnits += 1
            reported = false
            sawPicture = false
        }
        previousMarker = header.marker
        guard !sawPicture else { return false }
        let start = codec == .h264 ? H264Payload.classify(payload) : MPEG4Payload.classify(payload)
        switch start {
        case .nothing:
            return false
        case .configuration:
            return report()
        case .independentPicture:
            sawPicture = true
            return report()
        case .dependentPicture:
            sawPicture = true
            if reported { unconfirmedStarts += 1 }
            return false
        }
    }

    /// Whole packet bytes: parses the header first; invalid RTP is never a GOP start.
    public mutating func observe(packet bytes: [UInt8]) -> Bool {
        guard let header = try? RTPHeader(parsing: bytes) else { return false }
        return bytes.withUnsafeBytes { buf in
            observe(header, payload: UnsafeRawBufferPointer(rebasing: buf[header.payloadRange]))
        }
    }

    private mutating func report() -> Bool {
        guard !reported else { return false }
        reported = true
        gopStarts += 1
        return true
    }
}
