/// Why bytes were refused as a session description.
public struct SDPError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let reason: String
    public init(line: Int, reason: String) { self.line = line; self.reason = reason }
    public var description: String { "bad SDP on line \(line): \(reason)" }
}

/// A session description (RFC 4566) as far as the proxy needs it to cache a session and answer
/// a second player's DESCRIBE (SMP draft §5.3): the session-level attributes, and each media
/// description with its formats, rtpmap/fmtp attributes and control URL (RFC 2326 §C.1.1).
/// The lines are kept as received, so `serialized()` gives the description back unchanged.
public struct SessionDescription: Sendable, Equatable {
    /// One "<type>=<value>" line.
    public struct Line: Sendable, Equatable {
        public let type: Character
        public let value: String
    }

    /// Lines before the first "m=" line.
    public private(set) var sessionLines: [Line]
    public private(set) var media: [MediaDescription]

    public static let maxLines = 1_024

    public init(parsing bytes: [UInt8]) throws(SDPError) {
        var session: [Line] = []
        var media: [MediaDescription] = []
        var number = 0
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            var lineBytes = bytes[start..<end]
            start = end + 1
            number += 1
            guard number <= SessionDescription.maxLines else { throw SDPError(line: number, reason: "more than \(SessionDescription.maxLines) lines") }
            if lineBytes.last == 0x0D { lineBytes = lineBytes.dropLast() }
            if lineBytes.isEmpty { continue }
            // RFC 4566 §5: "<type>=<value>", type one letter, no space around "=".
            guard lineBytes.count >= 2, let first = lineBytes.first,
                  (0x61...0x7A).contains(first) || (0x41...0x5A).contains(first),
                  lineBytes[lineBytes.startIndex + 1] == 0x3D else {
                throw SDPError(line: number, reason: "not <type>=<value>")
            }
            if lineBytes.contains(where: { $0 < 0x20 && $0 != 0x09 }) { throw SDPError(line: number, reason: "control character") }
            let line = Line(type: Character(Unicode.Scalar(first)),
                            value: String(decoding: lineBytes.dropFirst(2), as: UTF8.self))
            if number == 1 || (session.isEmpty && media.isEmpty) {
                guard line.type == "v", line.value == "0" else { throw SDPError(line: number, reason: "the first line must be v=0") }
            }
            if line.type == "m" {
                media.append(try MediaDescription(mLine: line.value, lineNumber: number))
            } else if media.isEmpty {
                session.append(line)
            } else {
                media[media.count - 1].append(line)
            }
        }
        guard !session.isEmpty else { throw SDPError(line: 0, reason: "empty description") }
        self.sessionLines = session
        self.media = media
    }

    /// s= (§5.3).
    public var sessionName: String? { sessionLines.first { $0.type == "s" }?.value }

    /// The session-level a=control (RFC 2326 §C.1.1): "*" or a URL for aggregate control.
    public var control: String? { SessionDescription.attribute("control", in: sessionLines) }

    /// The video media description, when there is one.
    public var video: MediaDescription? { media.first { $0.mediaType == "video" } }

    /// The description's bytes, each line ending with CRLF (RFC 4566 §5).
    public func serialized() -> [UInt8] {
        var text = ""
        for line in sessionLines { text += "\(line.type)=\(line.value)\r\n" }
        for m in media { for line in m.lines { text += "\(line.type)=\(line.value)\r\n" } }
        return Array(text.utf8)
    }

    /// The value of the first "a=name:value" (or "a=name") among `lines`.
    static func attribute(_ name: String, in lines: [Line]) -> String? {
        for line in lines where line.type == "a" {
            let (n, v) = splitAttribute(line.value)
            if n == name { return v ?? "" }
        }
        return nil
    }

    static func splitAttribute(_ value: String) -> (name: Substring, value: String?) {
        guard let colon = value.firstIndex(of: ":") else { return (Substring(value), nil) }
        return (value[..<colon], String(value[value.index(after: colon)...]))
    }
}
