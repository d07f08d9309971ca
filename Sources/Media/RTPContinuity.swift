/// Where a player expects its stream to start (RFC 2326 §12.33, §12.39): the SSRC announced in
/// the SETUP answer's Transport and the seq/rtptime of the PLAY answer's RTP-Info. A proxy that
/// answers a new player's SETUP and PLAY itself chooses these values.
public struct RTPStreamStart: Sendable, Equatable {
    public var ssrc: UInt32
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public init(ssrc: UInt32, sequenceNumber: UInt16, timestamp: UInt32) {
        self.ssrc = ssrc; self.sequenceNumber = sequenceNumber; self.timestamp = timestamp
    }

    /// From the proxy's own answers to the new player: the SETUP answer's first transport's ssrc
    /// and the PLAY answer's RTP-Info entry for `controlURL` (or its only entry).
    public init(setupAnswer: RTSPMessage, playAnswer: RTSPMessage, controlURL: String?) throws(RTSPHeaderError) {
        guard let ssrc = try setupAnswer.transports()?.first?.ssrc else {
            throw RTSPHeaderError(header: "Transport", reason: "the SETUP answer names no ssrc")
        }
        let infos = try playAnswer.rtpInfo() ?? []
        let info = infos.first { $0.url == controlURL } ?? (infos.count == 1 ? infos.first : nil)
        guard let info, let seq = info.seq, let rtptime = info.rtptime else {
            throw RTSPHeaderError(header: "RTP-Info", reason: "the PLAY answer gives no seq and rtptime for the stream")
        }
        self.init(ssrc: ssrc, sequenceNumber: seq, timestamp: rtptime)
    }
}

/// The rewrite that makes the server's RTP stream, from the switch packet on, look like the
/// stream a new player was promised (RTPStreamStart): same SSRC, sequence numbers and
/// timestamps continuing from the announced base (RFC 3550 §5.1: seq and timestamp are
/// modular; the shifts are constants, so gaps and reordering after the switch stay as they are).
public struct RTPContinuity: Sendable, Equatable {
    public let ssrc: UInt32
    public let sequenceShift: UInt16
    public let timestampShift: UInt32

    /// Maps the server's packet (`sequenceNumber`, `timestamp`) at the switch onto `start`.
    public init(switchSequence: UInt16, switchTimestamp: UInt32, to start: RTPStreamStart) {
        ssrc = start.ssrc
        sequenceShift = start.sequenceNumber &- switchSequence
        timestampShift = start.timestamp &- switchTimestamp
    }

    public func sequenceNumber(_ serverSequence: UInt16) -> UInt16 { serverSequence &+ sequenceShift }
    public func timestamp(_ serverTimestamp: UInt32) -> UInt32 { serverTimestamp &+ timestampShift }

    /// Rewrites SSRC, sequence number and timestamp of the RTP packet in `bytes` in place; a
    /// packet that is not valid RTP is refused unchanged. UDP carries no checksum over these
    /// fields that the proxy keeps (the relay socket computes its own).
    public func apply(to bytes: inout [UInt8]) throws(RTPError) {
        let header = try RTPHeader(parsing: bytes)
        RTPWriter.setSequenceNumber(sequenceNumber(header.sequenceNumber), in: &bytes)
        RTPWriter.setTimestamp(timestamp(header.timestamp), in: &bytes)
        RTPWriter.setU32(ssrc, at: 8, in: &bytes)
    }

    /// Rewrites an RTCP sender report from the server (RFC 3550 §6.4.1) for the new player: the
    /// sender SSRC and the RTP timestamp that pairs with the NTP time. Other packets of the
    /// compound stay as they are. Refuses (unchanged) bytes that are not a valid compound packet.
    public func applyToSenderReports(in bytes: inout [UInt8]) throws(RTPError) {
        let compound = try RTCPCompound(parsing: bytes)
        for item in compound.items {
            guard case .senderReport(let report) = item.packet else { continue }
            RTPWriter.setU32(ssrc, at: item.offset + 4, in: &bytes)
            RTPWriter.setU32(timestamp(report.rtpTimestamp), at: item.offset + 16, in: &bytes)
        }
    }
}

extension RTPContinuity {
    /// Rewrites a player's receiver reports for the server (RFC 3550 §6.4.1), the inverse of
    /// `apply`: report blocks about the SSRC the player was promised name `serverSSRC`, and
    /// their extended highest sequence number counts in the server's numbering (the cycle count
    /// kept). Other blocks stay as they are; bytes that are not a valid compound are refused.
    public func applyInverseToReportBlocks(in bytes: inout [UInt8], serverSSRC: UInt32) throws(RTPError) {
        let compound = try RTCPCompound(parsing: bytes)
        for item in compound.items {
            let (first, blocks): (Int, [RTCPReportBlock])
            switch item.packet {
            case .receiverReport(let rr): (first, blocks) = (item.offset + 8, rr.reports)
            case .senderReport(let sr): (first, blocks) = (item.offset + 28, sr.reports)
            default: continue
            }
            for (k, block) in blocks.enumerated() where block.ssrc == ssrc {
                let at = first + 24 * k
                RTPWriter.setU32(serverSSRC, at: at, in: &bytes)
                let highest = block.extendedHighestSequence
                let serverSeq = UInt16(truncatingIfNeeded: highest) &- sequenceShift
                RTPWriter.setU32(highest & 0xFFFF_0000 | UInt32(serverSeq), at: at + 8, in: &bytes)
            }
        }
    }
}

/// Writes big-endian fields into packet bytes whose length was checked by a parser.
enum RTPWriter {
    static func setSequenceNumber(_ v: UInt16, in bytes: inout [UInt8]) {
        bytes[2] = UInt8(v >> 8); bytes[3] = UInt8(v & 0xFF)
    }
    static func setTimestamp(_ v: UInt32, in bytes: inout [UInt8]) { setU32(v, at: 4, in: &bytes) }
    static func setU32(_ v: UInt32, at i: Int, in bytes: inout [UInt8]) {
        bytes[i] = UInt8(v >> 24); bytes[i + 1] = UInt8(v >> 16 & 0xFF)
        bytes[i + 2] = UInt8(v >> 8 & 0xFF); bytes[i + 3] = UInt8(v & 0xFF)
    }
}
