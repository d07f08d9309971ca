/// The Session header (RFC 2326 §12.37): `session-id [;timeout=delta-seconds]`. The server
/// picks the identifier in its SETUP answer; the client repeats it on every later request.
/// A proxy that answers a second player itself hands it an identifier of its own.
public struct RTSPSessionHeader: Sendable, Equatable, CustomStringConvertible {
    public var id: String
    /// Seconds without activity after which the server may end the session (default 60, §12.37).
    public var timeout: Int?
    /// Parameters other than timeout, kept as written.
    public var otherParameters: [String]

    public static let defaultTimeout = 60

    public init(id: String, timeout: Int? = nil) { self.id = id; self.timeout = timeout; otherParameters = [] }

    public init(parsing value: String) throws(RTSPHeaderError) {
        let items = value.split(separator: ";", omittingEmptySubsequences: false).map { RTSPSyntax.trim($0) }
        let id = items.first ?? ""
        // session-id = 1*( ALPHA | DIGIT | safe ) with safe = "$-_.+" (§3.4); servers also use
        // other visible characters, so any visible ASCII but separators is accepted.
        guard !id.isEmpty, id.utf8.count <= 256,
              id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x2C && $0 != 0x3B && $0 != 0x22 }) else {
            throw RTSPHeaderError(header: "Session", reason: "bad session id \"\(id)\"")
        }
        self.id = String(id)
        self.otherParameters = []
        for item in items.dropFirst() where !item.isEmpty {
            if item.lowercased().hasPrefix("timeout=") {
                guard let t = RTSPSyntax.decimal(item.dropFirst("timeout=".count), maxDigits: 9) else {
                    throw RTSPHeaderError(header: "Session", reason: "bad timeout \"\(item)\"")
                }
                timeout = t
            } else {
                otherParameters.append(String(item))
            }
        }
    }

    public var description: String {
        ([id] + (timeout.map { ["timeout=\($0)"] } ?? []) + otherParameters).joined(separator: ";")
    }
}

/// One stream's entry of an RTP-Info header (RFC 2326 §12.33), sent in a PLAY answer: the
/// RTP sequence number and timestamp of the first packet the player will receive after PLAY.
/// The proxy answering a new player's PLAY chooses these, and the continuity rewrite then maps
/// the server's packets onto them.
public struct RTSPRTPInfo: Sendable, Equatable, CustomStringConvertible {
    public var url: String
    public var seq: UInt16?
    public var rtptime: UInt32?

    public init(url: String, seq: UInt16? = nil, rtptime: UInt32? = nil) { self.url = url; self.seq = seq; self.rtptime = rtptime }

    /// Every stream's entry: "url=...;seq=...;rtptime=..." separated by commas (a comma that
    /// is not followed by "url=" belongs to the URL before it).
    public static func parseList(_ value: String) throws(RTSPHeaderError) -> [RTSPRTPInfo] {
        var entries: [String] = []
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = RTSPSyntax.trim(part)
            if trimmed.lowercased().hasPrefix("url=") || entries.isEmpty {
                entries.append(String(trimmed))
            } else {
                entries[entries.count - 1] += "," + part
            }
        }
        var out: [RTSPRTPInfo] = []
        for entry in entries {
            var info = RTSPRTPInfo(url: "")
            var sawURL = false
            for item in entry.split(separator: ";").map({ RTSPSyntax.trim($0) }) {
                let lower = item.lowercased()
                if lower.hasPrefix("url=") {
                    info.url = String(item.dropFirst(4)); sawURL = true
                } else if lower.hasPrefix("seq=") {
                    guard let v = RTSPSyntax.decimal(item.dropFirst(4), maxDigits: 5), v <= 65_535 else {
                        throw RTSPHeaderError(header: "RTP-Info", reason: "bad seq \"\(item)\"")
                    }
                    info.seq = UInt16(v)
                } else if lower.hasPrefix("rtptime=") {
                    guard let v = RTSPSyntax.decimal(item.dropFirst(8), maxDigits: 10), v <= Int(UInt32.max) else {
                        throw RTSPHeaderError(header: "RTP-Info", reason: "bad rtptime \"\(item)\"")
                    }
                    info.rtptime = UInt32(v)
                }
            }
            guard sawURL else { throw RTSPHeaderError(header: "RTP-Info", reason: "an entry without url") }
            out.append(info)
        }
        return out
    }

    public static func formatList(_ infos: [RTSPRTPInfo]) -> String { infos.map(\.description).joined(separator: ",") }

    public var description: String {
        (["url=\(url)"] + (seq.map { ["seq=\($0)"] } ?? []) + (rtptime.map { ["rtptime=\($0)"] } ?? []))
            .joined(separator: ";")
    }
}
