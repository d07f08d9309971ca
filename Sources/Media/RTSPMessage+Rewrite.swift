import Wire

/// What the proxy reads and changes in RTSP messages it relays (RFC 2326 §12; SMP draft §4.3.2:
/// "modifying the addresses"): the request URL, Transport (client ports, destination, source),
/// Session identifiers, Content-Base and RTP-Info. Each change rewrites only its own line, so the
/// rest of the message keeps its exact bytes.
extension RTSPMessage {
    /// The request URL (§6.1); nothing happens to a response.
    public mutating func setRequestURI(_ uri: String) {
        guard case .request(let method, _, let version) = startLine else { return }
        let clean = String(RTSPSyntax.singleLine(uri).filter { $0 != " " })
        setStartLine(.request(method: method, uri: clean, version: version))
    }

    /// The Transport header's specs (§12.39); nil when absent.
    public func transports() throws(RTSPHeaderError) -> [RTSPTransport]? {
        guard let value = headers["Transport"] else { return nil }
        return try RTSPTransport.parseList(value)
    }

    /// Changes every transport-spec with `change`; throws (changing nothing) when the header is
    /// malformed. Returns false when there is no Transport header.
    @discardableResult
    public mutating func rewriteTransports(_ change: (inout RTSPTransport) -> Void) throws(RTSPHeaderError) -> Bool {
        guard var specs = try transports() else { return false }
        for i in specs.indices { change(&specs[i]) }
        headers["Transport"] = RTSPTransport.formatList(specs)
        return true
    }

    /// The Session header (§12.37); nil when absent.
    public func session() throws(RTSPHeaderError) -> RTSPSessionHeader? {
        guard let value = headers["Session"] else { return nil }
        return try RTSPSessionHeader(parsing: value)
    }

    /// Replaces the session identifier, keeping timeout and other parameters; false when absent.
    /// Throws, changing nothing, when `id` is not a bare session-id or the header is malformed.
    @discardableResult
    public mutating func setSessionID(_ id: String) throws(RTSPHeaderError) -> Bool {
        // A bare session-id (§3.4): no parameters, no separators, nothing a header could split on.
        let replacement = try RTSPSessionHeader(parsing: id)
        guard replacement.id == id else { throw RTSPHeaderError(header: "Session", reason: "bad session id \"\(id)\"") }
        guard var session = try session() else { return false }
        session.id = replacement.id
        headers["Session"] = session.description
        return true
    }

    /// The RTP-Info header's entries (§12.33); nil when absent.
    public func rtpInfo() throws(RTSPHeaderError) -> [RTSPRTPInfo]? {
        guard let value = headers["RTP-Info"] else { return nil }
        return try RTSPRTPInfo.parseList(value)
    }

    public mutating func setRTPInfo(_ infos: [RTSPRTPInfo]) {
        headers["RTP-Info"] = infos.isEmpty ? nil : RTSPRTPInfo.formatList(infos)
    }

    /// Content-Base (§12.11): the URL relative control URLs of a DESCRIBE answer resolve against.
    public var contentBase: String? { headers["Content-Base"] }

    /// Replaces Content-Base when present (a proxy in service mode names itself, not the server).
    public mutating func setContentBase(_ url: String) {
        if headers["Content-Base"] != nil { headers["Content-Base"] = url }
    }
}

/// An rtsp:// URL (RFC 2326 §3.2): `rtsp://host[:port][/path]`; default port 554.
public struct RTSPURL: Sendable, Equatable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: UInt16?
    /// Everything after the authority, starting with "/" (or empty).
    public var path: String

    public static let defaultPort: UInt16 = 554

    public init?(_ s: String) {
        let lower = s.lowercased()
        let scheme: String
        if lower.hasPrefix("rtsp://") { scheme = "rtsp" } else if lower.hasPrefix("rtspu://") { scheme = "rtspu" } else { return nil }
        let rest = s.dropFirst(scheme.count + 3)
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host = authority
        var port: UInt16?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = RTSPSyntax.decimal(after.dropFirst(), maxDigits: 5), p <= 65_535 else { return nil }
                port = UInt16(p)
            } else if !after.isEmpty { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let p = RTSPSyntax.decimal(authority[authority.index(after: colon)...], maxDigits: 5), p <= 65_535 else { return nil }
            port = UInt16(p)
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) else { return nil }
        self.scheme = scheme; self.host = String(host); self.port = port; self.path = String(rest[authorityEnd...])
    }

    public var effectivePort: UInt16 { port ?? RTSPURL.defaultPort }

    /// `url` with its authority changed from `from` to `to` when it names `from` (service
    /// mode: a player's URLs name the published address, the server's its own); any other URL
    /// is returned as it is.
    public static func rebased(_ url: String, from: IPEndpoint, to: IPEndpoint) -> String {
        guard var u = RTSPURL(url), u.host == from.address.hostText, u.effectivePort == from.port else { return url }
        u.host = to.address.hostText
        u.port = to.port
        return u.description
    }

    public var description: String { "\(scheme)://\(host)\(port.map { ":\($0)" } ?? "")\(path)" }

    /// `reference` resolved against this URL as a base (RFC 2326 §C.1.1, RFC 3986 §5): absolute
    /// URLs stay, "*" means the base itself, a path starting with "/" replaces the path, anything
    /// else is appended to the base's directory (or after the base when it ends with "/").
    public func resolving(_ reference: String) -> String {
        if reference == "*" || reference.isEmpty { return description }
        if RTSPURL(reference) != nil { return reference }
        let base = "\(scheme)://\(host)\(port.map { ":\($0)" } ?? "")"
        if reference.hasPrefix("/") { return base + reference }
        if path.hasSuffix("/") { return base + path + reference }
        return base + path + "/" + reference
    }
}

extension IPAddress {
    /// The address as a URL's host (RFC 3986 §3.2.2: an IPv6 literal in brackets).
    var hostText: String {
        switch self {
        case .v4: description
        case .v6: "[\(description)]"
        }
    }
}
