/// A reception report block (RFC 3550 §6.4.1): what a receiver says about one source.
public struct RTCPReportBlock: Sendable, Equatable {
    public var ssrc: UInt32
    /// Packets lost since the previous report, as a fixed-point fraction of 256.
    public var fractionLost: UInt8
    /// Packets lost since the start, a signed 24-bit number (duplicates can make it negative).
    public var cumulativeLost: Int32
    public var extendedHighestSequence: UInt32
    /// Interarrival jitter in timestamp units (§6.4.1, A.8).
    public var jitter: UInt32
    public var lastSenderReport: UInt32
    public var delaySinceLastSenderReport: UInt32

    public init(ssrc: UInt32, fractionLost: UInt8, cumulativeLost: Int32, extendedHighestSequence: UInt32,
                jitter: UInt32, lastSenderReport: UInt32 = 0, delaySinceLastSenderReport: UInt32 = 0) {
        self.ssrc = ssrc; self.fractionLost = fractionLost; self.cumulativeLost = cumulativeLost
        self.extendedHighestSequence = extendedHighestSequence; self.jitter = jitter
        self.lastSenderReport = lastSenderReport; self.delaySinceLastSenderReport = delaySinceLastSenderReport
    }

    /// The fraction lost as a number in 0...1.
    public var fractionLostRatio: Double { Double(fractionLost) / 256 }

    static let length = 24
}

/// SR (RFC 3550 §6.4.1): a sender's NTP/RTP time pair and counts, then report blocks.
public struct RTCPSenderReport: Sendable, Equatable {
    public var ssrc: UInt32
    public var ntpTimestamp: UInt64
    public var rtpTimestamp: UInt32
    public var packetCount: UInt32
    public var octetCount: UInt32
    public var reports: [RTCPReportBlock]
    public init(ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32,
                reports: [RTCPReportBlock]) {
        self.ssrc = ssrc; self.ntpTimestamp = ntpTimestamp; self.rtpTimestamp = rtpTimestamp
        self.packetCount = packetCount; self.octetCount = octetCount; self.reports = reports
    }
}

/// RR (RFC 3550 §6.4.2): a receiver's report blocks.
public struct RTCPReceiverReport: Sendable, Equatable {
    public var ssrc: UInt32
    public var reports: [RTCPReportBlock]
    public init(ssrc: UInt32, reports: [RTCPReportBlock]) { self.ssrc = ssrc; self.reports = reports }
}

/// BYE (RFC 3550 §6.6): sources leaving, with an optional reason.
public struct RTCPBye: Sendable, Equatable {
    public var sources: [UInt32]
    public var reason: String?
    public init(sources: [UInt32], reason: String? = nil) { self.sources = sources; self.reason = reason }
}

/// One packet of a compound RTCP packet (RFC 3550 §6.1).
public enum RTCPPacket: Sendable, Equatable {
    case senderReport(RTCPSenderReport)
    case receiverReport(RTCPReceiverReport)
    /// SDES (§6.5): its chunks are not needed by the proxy, only its count.
    case sourceDescription(chunkCount: Int)
    case bye(RTCPBye)
    /// APP (§6.7) and any other packet type (feedback, XR): type and length only.
    case other(packetType: UInt8, length: Int)

    public static let typeSR: UInt8 = 200, typeRR: UInt8 = 201, typeSDES: UInt8 = 202, typeBYE: UInt8 = 203
}

/// A compound RTCP packet (RFC 3550 §6.1), checked as Appendix A.2 asks: every packet is
/// version 2, every length field lands inside the datagram and together they cover it exactly,
/// only the last packet may be padded, and each packet's report count fits its length. A
/// packet that lies about any length is refused whole. Appendix A.2's rule that an SR or RR
/// comes first is reported (`startsWithReport`), not enforced: reduced-size RTCP (RFC 5506)
/// sends feedback packets alone.
public struct RTCPCompound: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        /// Where the packet starts in the datagram.
        public let offset: Int
        public let length: Int
        public let packet: RTCPPacket
    }

    public let items: [Item]
    public var packets: [RTCPPacket] { items.map(\.packet) }

    /// The first packet is an SR or RR (RFC 3550 §6.1).
    public var startsWithReport: Bool {
        switch items.first?.packet {
        case .senderReport?, .receiverReport?: true
        default: false
        }
    }

    /// Every report block of every SR and RR, in order.
    public var reportBlocks: [RTCPReportBlock] {
        packets.flatMap { p -> [RTCPReportBlock] in
            switch p {
            case .senderReport(let sr): sr.reports
            case .receiverReport(let rr): rr.reports
            default: []
            }
        }
    }

    public init(parsing bytes: [UInt8]) throws(RTPError) {
        var items: [Item] = []
        var offset = 0
        guard bytes.count >= 4 else { throw .truncated }
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { throw .badRTCPLength }
            let b0 = bytes[offset]
            guard b0 >> 6 == 2 else { throw .badVersion }
            let type = bytes[offset + 1]
            guard (192...223).contains(type) else { throw .notRTCP } // RTP payload types 72-95 would clash (RFC 5761 §4)
            let length = ((Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])) + 1) * 4
            guard length <= bytes.count - offset else { throw .badRTCPLength }
            var bodyEnd = offset + length
            if b0 & 0x20 != 0 {
                // Padding only on the last packet; its count is at least 1 and within the packet.
                guard offset + length == bytes.count else { throw .badRTCPPadding }
                let count = Int(bytes[bodyEnd - 1])
                guard count >= 1, count <= length - 4 else { throw .badRTCPPadding }
                bodyEnd -= count
            }
            let packet = try RTCPCompound.decode(bytes, start: offset, end: bodyEnd, count: Int(b0 & 0x1F), type: type)
            items.append(Item(offset: offset, length: length, packet: packet))
            offset += length
        }
        self.items = items
    }

    private static func decode(_ b: [UInt8], start: Int, end: Int, count: Int, type: UInt8) throws(RTPError) -> RTCPPacket {
        let size = end - start
        switch type {
        case RTCPPacket.typeSR:
            guard size >= 28 + RTCPReportBlock.length * count else { throw .badRTCPCount }
            return .senderReport(RTCPSenderReport(
                ssrc: u32(b, start + 4), ntpTimestamp: UInt64(u32(b, start + 8)) << 32 | UInt64(u32(b, start + 12)),
                rtpTimestamp: u32(b, start + 16), packetCount: u32(b, start + 20), octetCount: u32(b, start + 24),
                reports: blocks(b, at: start + 28, count: count)))
        case RTCPPacket.typeRR:
            guard size >= 8 + RTCPReportBlock.length * count else { throw .badRTCPCount }
            return .receiverReport(RTCPReceiverReport(ssrc: u32(b, start + 4), reports: blocks(b, at: start + 8, count: count)))
        case RTCPPacket.typeSDES:
            return .sourceDescription(chunkCount: count)
        case RTCPPacket.typeBYE:
            guard size >= 4 + 4 * count else { throw .badRTCPCount }
            let sources = (0..<count).map { u32(b, start + 4 + 4 * $0) }
            var reason: String?
            let reasonAt = start + 4 + 4 * count
            if reasonAt < end {
                let n = Int(b[reasonAt])
                guard reasonAt + 1 + n <= end else { throw .badRTCPLength }
                reason = String(decoding: b[(reasonAt + 1)..<(reasonAt + 1 + n)], as: UTF8.self)
            }
            return .bye(RTCPBye(sources: sources, reason: reason))
        default:
            return .other(packetType: type, length: size)
        }
    }

    private static func blocks(_ b: [UInt8], at: Int, count: Int) -> [RTCPReportBlock] {
        (0..<count).map { i in
            let o = at + RTCPReportBlock.length * i
            let lostField = u32(b, o + 4) & 0x00FF_FFFF
            // Sign-extend the 24-bit cumulative count.
            let cumulative = Int32(bitPattern: lostField & 0x0080_0000 != 0 ? lostField | 0xFF00_0000 : lostField)
            return RTCPReportBlock(ssrc: u32(b, o), fractionLost: b[o + 4], cumulativeLost: cumulative,
                                   extendedHighestSequence: u32(b, o + 8), jitter: u32(b, o + 12),
                                   lastSenderReport: u32(b, o + 16), delaySinceLastSenderReport: u32(b, o + 20))
        }
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }
}
