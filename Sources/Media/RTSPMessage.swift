/// An RTSP 1.0 message (RFC 2326 §4, §6, §7): a request or a response line, header fields and
/// an optional body (its length from Content-Length, §12.14).
///
/// Exact bytes: a message keeps the bytes it was parsed from, line by line; `serialized()`
/// gives them back unchanged except for the lines the proxy rewrote (a rewritten line ends
/// with CRLF, §4). So a relayed message differs from the original only where it must.
public struct RTSPMessage: Sendable, Equatable {
    /// The first line of a request (§6.1) or a response (§7.1).
    public enum StartLine: Sendable, Equatable {
        case request(method: String, uri: String, version: String)
        case response(version: String, status: Int, reason: String)

        /// The line without its terminator.
        public var text: String {
            switch self {
            case .request(let method, let uri, let version): "\(method) \(uri) \(version)"
            case .response(let version, let status, let reason): "\(version) \(status) \(reason)"
            }
        }
    }

    public private(set) var startLine: StartLine
    /// The start line as received, with its terminator; nil once rewritten.
    var rawStartLine: [UInt8]?
    public var headers: RTSPHeaderFields
    public private(set) var body: [UInt8]
    /// The empty line ending the header section as received ("\r\n" or "\n").
    var rawHeaderEnd: [UInt8] = [0x0D, 0x0A]

    /// A new message (built, not parsed): lines end with CRLF.
    public init(_ startLine: StartLine, headers: RTSPHeaderFields = RTSPHeaderFields(), body: [UInt8] = []) {
        self.startLine = startLine
        self.headers = headers
        self.body = []
        self.setBody(body)
    }

    init(startLine: StartLine, rawStartLine: [UInt8], headers: RTSPHeaderFields, rawHeaderEnd: [UInt8], body: [UInt8]) {
        self.startLine = startLine; self.rawStartLine = rawStartLine
        self.headers = headers; self.rawHeaderEnd = rawHeaderEnd; self.body = body
    }

    public var isRequest: Bool { if case .request = startLine { true } else { false } }
    public var method: String? { if case .request(let m, _, _) = startLine { m } else { nil } }
    public var uri: String? { if case .request(_, let u, _) = startLine { u } else { nil } }
    public var status: Int? { if case .response(_, let s, _) = startLine { s } else { nil } }

    /// CSeq (§12.17): every request and response carries one; nil when absent or not a number.
    public var cseq: Int? { headers["CSeq"].flatMap { RTSPSyntax.decimal($0, maxDigits: 9) } }

    /// Replaces the start line (e.g. the request URL, §6.1); the line is written anew.
    public mutating func setStartLine(_ line: StartLine) {
        startLine = line
        rawStartLine = nil
    }

    /// Replaces the body and sets Content-Length (§12.14) to its size (removed when empty).
    public mutating func setBody(_ bytes: [UInt8]) {
        body = bytes
        if bytes.isEmpty {
            headers.remove("Content-Length")
        } else if headers["Content-Length"] != String(bytes.count) {
            headers["Content-Length"] = String(bytes.count)
        }
    }

    /// The message's bytes: what was received, with rewritten lines in place.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + body.count)
        out += rawStartLine ?? Array((startLine.text + "\r\n").utf8)
        headers.append(to: &out)
        out += rawHeaderEnd
        out += body
        return out
    }

    public static func == (a: RTSPMessage, b: RTSPMessage) -> Bool { a.serialized() == b.serialized() }
}
