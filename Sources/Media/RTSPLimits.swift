/// Bounds on what one RTSP message may take from a connection before it is refused: the
/// parser buffers a message until it is complete, so without them a peer could make the proxy
/// hold unbounded memory (RFC 2326 §15 leaves sizes open; these are the proxy's policy).
public struct RTSPLimits: Sendable, Equatable {
    /// Start line and header fields together, terminators included.
    public var maxHeaderBytes: Int
    /// Header fields (continuation lines count with their field).
    public var maxHeaderCount: Int
    /// Content-Length (an SDP description is a few kilobytes).
    public var maxBodyBytes: Int

    public init(maxHeaderBytes: Int = 8_192, maxHeaderCount: Int = 64, maxBodyBytes: Int = 65_536) {
        self.maxHeaderBytes = maxHeaderBytes; self.maxHeaderCount = maxHeaderCount; self.maxBodyBytes = maxBodyBytes
    }
}

/// Why bytes were refused as an RTSP message. After one of these the stream cannot be
/// re-synchronised: the proxy answers 400 (or drops) and closes the connection.
public enum RTSPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message ended before its header section or body did (one-shot parsing only).
    case truncated
    /// Bytes after a complete message (one-shot parsing only).
    case trailingBytes(Int)
    case headerTooLarge(limit: Int)
    case tooManyHeaders(limit: Int)
    case bodyTooLarge(length: Int, limit: Int)
    case malformedStartLine(String)
    case unsupportedVersion(String)
    case malformedHeader(line: Int, reason: String)
    case badContentLength(String)

    public var description: String {
        switch self {
        case .truncated: "the message is cut short"
        case .trailingBytes(let n): "\(n) bytes follow the message"
        case .headerTooLarge(let limit): "the header section exceeds \(limit) bytes"
        case .tooManyHeaders(let limit): "more than \(limit) header fields"
        case .bodyTooLarge(let length, let limit): "Content-Length \(length) exceeds \(limit) bytes"
        case .malformedStartLine(let why): "malformed start line: \(why)"
        case .unsupportedVersion(let v): "unsupported protocol version \(v)"
        case .malformedHeader(let line, let why): "malformed header field on line \(line): \(why)"
        case .badContentLength(let v): "bad Content-Length \(v)"
        }
    }

    /// A short label for drop counters.
    public var label: String {
        switch self {
        case .truncated: "truncated"
        case .trailingBytes: "trailing_bytes"
        case .headerTooLarge: "header_too_large"
        case .tooManyHeaders: "too_many_headers"
        case .bodyTooLarge: "body_too_large"
        case .malformedStartLine: "malformed_start_line"
        case .unsupportedVersion: "unsupported_version"
        case .malformedHeader: "malformed_header"
        case .badContentLength: "bad_content_length"
        }
    }
}
