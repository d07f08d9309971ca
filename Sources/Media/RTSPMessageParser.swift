/// What an RTSP connection carries: messages, and with RTP over the RTSP connection, binary
/// frames "$ channel length data" between messages (RFC 2326 §10.12).
public enum RTSPStreamItem: Sendable, Equatable {
    case message(RTSPMessage)
    case interleaved(channel: UInt8, payload: [UInt8])
}

/// An incremental RTSP 1.0 parser over a TCP byte stream (RFC 2326 §4, §6, §7, §10.12):
/// `append` what was read, then call `next()` until it returns nil (more bytes needed).
///
/// Invariants:
/// - It never holds more than one incomplete message, and never more than
///   `limits.maxHeaderBytes` of an unfinished header section or `limits.maxBodyBytes` of body.
/// - Any input gives a message, nil, or a typed `RTSPParseError`; it never traps. After an
///   error the stream cannot be re-synchronised, so every later `next()` throws the same error.
public struct RTSPMessageParser: Sendable {
    public let limits: RTSPLimits
    private var buffer: [UInt8] = []
    private var start = 0
    /// How far past `start` the search for the header section's end already looked, so a peer
    /// sending one byte at a time costs linear, not quadratic, work.
    private var scanned = 0
    public private(set) var failure: RTSPParseError?

    public init(limits: RTSPLimits = RTSPLimits()) { self.limits = limits }

    /// Bytes received and not yet returned as an item.
    public var bufferedByteCount: Int { buffer.count - start }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete item, or nil when more bytes are needed.
    public mutating func next() throws(RTSPParseError) -> RTSPStreamItem? {
        if let failure { throw failure }
        do {
            return try parseNext()
        } catch {
            failure = error
            throw error
        }
    }

    /// Parses exactly one complete message: `truncated` when it is cut short, `trailingBytes`
    /// when more follows.
    public static func parse(_ bytes: [UInt8], limits: RTSPLimits = RTSPLimits()) throws(RTSPParseError) -> RTSPMessage {
        var parser = RTSPMessageParser(limits: limits)
        parser.append(bytes)
        guard let item = try parser.next() else { throw .truncated }
        guard case .message(let message) = item else { throw .malformedStartLine("interleaved binary data, not a message") }
        guard parser.bufferedByteCount == 0 else { throw .trailingBytes(parser.bufferedByteCount) }
        return message
    }

    private mutating func parseNext() throws(RTSPParseError) -> RTSPStreamItem? {
        // Empty lines between messages are ignored (RFC 2616 §4.1, which RTSP follows).
        while start < buffer.count, buffer[start] == 0x0D || buffer[start] == 0x0A { start += 1; scanned = 0 }
        let available = buffer.count - start
        guard available > 0 else { return nil }
        if buffer[start] == 0x24 { return interleavedFrame(available: available) }

        guard let headerEnd = findHeaderEnd() else {
            if available >= limits.maxHeaderBytes { throw .headerTooLarge(limit: limits.maxHeaderBytes) }
            return nil
        }
        var head = try RTSPHeaderSection.parse(buffer[start..<headerEnd.blankLineStart], limits: limits)
        let bodyLength = try contentLength(head.fields)
        let bodyStart = headerEnd.bodyStart
        guard buffer.count - bodyStart >= bodyLength else { return nil }
        scanned = 0
        let message = RTSPMessage(
            startLine: head.startLine, rawStartLine: head.rawStartLine, headers: RTSPHeaderFields(parsed: head.fields),
            rawHeaderEnd: Array(buffer[headerEnd.blankLineStart..<bodyStart]),
            body: Array(buffer[bodyStart..<(bodyStart + bodyLength)]))
        head.fields = []
        start = bodyStart + bodyLength
        return .message(message)
    }

    /// "$", a channel byte, a 16-bit length, then that many bytes (§10.12).
    private mutating func interleavedFrame(available: Int) -> RTSPStreamItem? {
        guard available >= 4 else { return nil }
        let length = Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        guard available >= 4 + length else { return nil }
        let item = RTSPStreamItem.interleaved(channel: buffer[start + 1],
                                              payload: Array(buffer[(start + 4)..<(start + 4 + length)]))
        start += 4 + length
        return item
    }

    /// Where the empty line ending the header section starts and where the body starts,
    /// looking no further than `maxHeaderBytes`.
    private mutating func findHeaderEnd() -> (blankLineStart: Int, bodyStart: Int)? {
        let end = min(buffer.count, start + limits.maxHeaderBytes)
        // Resume a little before where the last search stopped: its line feed may have been the
        // last byte then, with the blank line after it arriving only now.
        var i = max(start, start + scanned - 3)
        defer { scanned = max(0, i - start) }
        while i < end {
            if buffer[i] == 0x0A {
                let next = i + 1
                if next < buffer.count && buffer[next] == 0x0A { return (next, next + 1) }
                if next + 1 < buffer.count && buffer[next] == 0x0D && buffer[next + 1] == 0x0A { return (next, next + 2) }
            }
            i += 1
        }
        return nil
    }

    /// Content-Length (§12.14): absent means no body (§4.3); repeated values must agree.
    private func contentLength(_ fields: [RTSPHeaderFields.Field]) throws(RTSPParseError) -> Int {
        let values = fields.filter { RTSPSyntax.sameName($0.name, "Content-Length") }.map(\.value)
        guard let first = values.first else { return 0 }
        guard values.allSatisfy({ $0 == first }), let length = RTSPSyntax.decimal(first, maxDigits: 10) else {
            throw .badContentLength(values.joined(separator: ","))
        }
        guard length <= limits.maxBodyBytes else { throw .bodyTooLarge(length: length, limit: limits.maxBodyBytes) }
        return length
    }
}
