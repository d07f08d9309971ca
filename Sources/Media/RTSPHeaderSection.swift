/// The start line and header fields of one RTSP message (RFC 2326 §4, §6.1, §7.1), split into
/// lines that keep their bytes, so the message can be written back exactly.
struct RTSPHeaderSection {
    var startLine: RTSPMessage.StartLine
    var rawStartLine: [UInt8]
    var fields: [RTSPHeaderFields.Field]

    /// The protocol version this proxy speaks (§3.1).
    static let version = "RTSP/1.0"

    /// Parses the bytes before the empty line; each line ends with LF, optionally after CR (§4:
    /// receivers accept CR LF and LF alone).
    static func parse(_ bytes: ArraySlice<UInt8>, limits: RTSPLimits) throws(RTSPParseError) -> RTSPHeaderSection {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = bytes.startIndex
        for i in bytes.indices where bytes[i] == 0x0A {
            lines.append(bytes[lineStart...i])
            lineStart = i + 1
        }
        if lineStart < bytes.endIndex { lines.append(bytes[lineStart...]) }
        guard let first = lines.first else { throw .malformedStartLine("empty") }

        let startLine = try parseStartLine(try text(of: first, line: 1))
        var fields: [RTSPHeaderFields.Field] = []
        for (offset, raw) in lines.dropFirst().enumerated() {
            let number = offset + 2
            let line = try text(of: raw, line: number)
            if let c = line.first, c == " " || c == "\t" {
                // A continuation line (RFC 2616 §2.2 LWS) extends the previous field's value.
                guard let previous = fields.popLast(), let previousRaw = previous.raw else {
                    throw .malformedHeader(line: number, reason: "continuation line without a field")
                }
                let value = RTSPSyntax.trim(previous.value + " " + RTSPSyntax.trim(line))
                fields.append(.init(name: previous.name, value: value, raw: previousRaw + raw))
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw .malformedHeader(line: number, reason: "no colon")
            }
            let name = line[..<colon]
            guard RTSPSyntax.isToken(name) else {
                throw .malformedHeader(line: number, reason: "bad field name")
            }
            guard fields.count < limits.maxHeaderCount else { throw .tooManyHeaders(limit: limits.maxHeaderCount) }
            let value = RTSPSyntax.trim(line[line.index(after: colon)...])
            fields.append(.init(name: String(name), value: String(value), raw: Array(raw)))
        }
        return RTSPHeaderSection(startLine: startLine, rawStartLine: Array(first), fields: fields)
    }

    /// A line's text without its terminator; control characters other than tab are refused.
    private static func text(of raw: ArraySlice<UInt8>, line: Int) throws(RTSPParseError) -> String {
        var body = raw
        if body.last == 0x0A { body = body.dropLast() }
        if body.last == 0x0D { body = body.dropLast() }
        if body.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
            if line == 1 { throw .malformedStartLine("control character") }
            throw .malformedHeader(line: line, reason: "control character")
        }
        return String(decoding: body, as: UTF8.self)
    }

    /// "METHOD SP URI SP RTSP/1.0" (§6.1) or "RTSP/1.0 SP 3DIGIT SP reason" (§7.1).
    static func parseStartLine(_ line: String) throws(RTSPParseError) -> RTSPMessage.StartLine {
        if line.hasPrefix("RTSP/") {
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2 else { throw .malformedStartLine("status line without a status code") }
            guard parts[0] == version else { throw .unsupportedVersion(String(parts[0])) }
            guard parts[1].utf8.count == 3, let status = RTSPSyntax.decimal(parts[1]), status >= 100 else {
                throw .malformedStartLine("bad status code")
            }
            return .response(version: version, status: status, reason: parts.count == 3 ? String(parts[2]) : "")
        }
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformedStartLine("a request line has three parts") }
        guard RTSPSyntax.isToken(parts[0]) else { throw .malformedStartLine("bad method") }
        guard !parts[1].isEmpty else { throw .malformedStartLine("empty request URI") }
        guard parts[2].hasPrefix("RTSP/") else { throw .malformedStartLine("not an RTSP request") }
        guard parts[2] == version else { throw .unsupportedVersion(String(parts[2])) }
        return .request(method: String(parts[0]), uri: String(parts[1]), version: version)
    }
}
