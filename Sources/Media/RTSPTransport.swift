/// A port pair "a-b" or a single port "a" in a Transport header (RFC 2326 §12.39: client_port,
/// server_port, port), or an interleaved channel pair.
public struct RTSPPortRange: Sendable, Equatable, CustomStringConvertible {
    public var first: UInt16
    public var last: UInt16?
    public init(_ first: UInt16, _ last: UInt16? = nil) { self.first = first; self.last = last }

    /// "a" or "a-b" with each part a decimal up to 65535 (255 for channels).
    init?(_ s: Substring, max: Int = 65_535) {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let a = RTSPSyntax.decimal(parts[0], maxDigits: 5), a <= max else { return nil }
        first = UInt16(a)
        if parts.count == 2 {
            guard let b = RTSPSyntax.decimal(parts[1], maxDigits: 5), b <= max, b >= a else { return nil }
            last = UInt16(b)
        }
    }

    public var description: String { last.map { "\(first)-\($0)" } ?? "\(first)" }
}

/// Why a typed header's value was refused. The message itself stays usable.
public struct RTSPHeaderError: Error, Sendable, Equatable, CustomStringConvertible {
    public let header: String
    public let reason: String
    public init(header: String, reason: String) { self.header = header; self.reason = reason }
    public var description: String { "bad \(header) header: \(reason)" }
}

/// One transport-spec of a Transport header (RFC 2326 §12.39), e.g.
/// `RTP/AVP;unicast;client_port=5000-5001` or `RTP/AVP/TCP;interleaved=0-1`. Parameters keep
/// their order and spelling; the typed accessors read and replace the ones the proxy changes.
public struct RTSPTransport: Sendable, Equatable, CustomStringConvertible {
    public struct Parameter: Sendable, Equatable {
        public var name: String
        public var value: String?
        public init(_ name: String, _ value: String? = nil) { self.name = name; self.value = value }
    }

    /// "RTP/AVP", "RTP/AVP/UDP", "RTP/AVP/TCP", as written.
    public var specifier: String
    public var parameters: [Parameter]

    public init(specifier: String = "RTP/AVP", parameters: [Parameter] = []) {
        self.specifier = specifier; self.parameters = parameters
    }

    /// The protocol is RTP with the AVP profile (RFC 3551), whatever the lower transport.
    public var isRTPAVP: Bool {
        let parts = specifier.split(separator: "/")
        return parts.count >= 2 && RTSPSyntax.sameName(String(parts[0]), "RTP") && RTSPSyntax.sameName(String(parts[1]), "AVP")
    }

    /// RTP carried over the RTSP connection itself ("/TCP", §10.12).
    public var isTCP: Bool {
        let parts = specifier.split(separator: "/")
        return parts.count == 3 && RTSPSyntax.sameName(String(parts[2]), "TCP")
    }

    /// UDP is the default lower transport (§12.39).
    public var isUDP: Bool { !isTCP }
    public var isUnicast: Bool { has("unicast") }
    public var isMulticast: Bool { has("multicast") }

    public var clientPort: RTSPPortRange? {
        get { self["client_port"].flatMap { RTSPPortRange(Substring($0)) } }
        set { self["client_port"] = newValue?.description }
    }
    public var serverPort: RTSPPortRange? {
        get { self["server_port"].flatMap { RTSPPortRange(Substring($0)) } }
        set { self["server_port"] = newValue?.description }
    }
    /// The channels of RTP and RTCP over the RTSP connection (§10.12).
    public var interleaved: RTSPPortRange? {
        get { self["interleaved"].flatMap { RTSPPortRange(Substring($0), max: 255) } }
        set { self["interleaved"] = newValue?.description }
    }
    /// Where the client wants the stream sent; a proxy rewrites it to its own address.
    public var destination: String? {
        get { self["destination"] }
        set { self["destination"] = newValue }
    }
    public var source: String? {
        get { self["source"] }
        set { self["source"] = newValue }
    }
    /// The RTP SSRC the sender will use (8 hex digits, §12.39).
    public var ssrc: UInt32? {
        get { self["ssrc"].flatMap { RTSPSyntax.hex($0, maxDigits: 8) }.map { UInt32($0) } }
        set { self["ssrc"] = newValue.map { RTSPTransport.hex8($0) } }
    }

    public func has(_ name: String) -> Bool { parameters.contains { RTSPSyntax.sameName($0.name, name) } }

    /// A parameter's value; setting replaces it in place, appends it when absent, removes it when nil.
    public subscript(name: String) -> String? {
        get { parameters.first { RTSPSyntax.sameName($0.name, name) }?.value }
        set {
            guard let newValue else { parameters.removeAll { RTSPSyntax.sameName($0.name, name) }; return }
            let clean = RTSPTransport.clean(newValue)
            if let i = parameters.firstIndex(where: { RTSPSyntax.sameName($0.name, name) }) {
                parameters[i].value = clean
            } else {
                parameters.append(Parameter(name, clean))
            }
        }
    }

    public var description: String {
        ([specifier] + parameters.map { p in p.value.map { "\(p.name)=\($0)" } ?? p.name }).joined(separator: ";")
    }

    /// Every transport-spec of a Transport header value, in order of preference (§12.39).
    public static func parseList(_ value: String) throws(RTSPHeaderError) -> [RTSPTransport] {
        var out: [RTSPTransport] = []
        for spec in splitOutsideQuotes(value, on: ",") {
            let items = splitOutsideQuotes(String(spec), on: ";").map { RTSPSyntax.trim($0) }
            guard let specifier = items.first, !specifier.isEmpty, specifier.contains("/"),
                  !specifier.contains(where: { $0 == " " || $0 == "=" }) else {
                throw RTSPHeaderError(header: "Transport", reason: "no transport protocol/profile in \"\(spec)\"")
            }
            var transport = RTSPTransport(specifier: String(specifier))
            for item in items.dropFirst() where !item.isEmpty {
                if let eq = item.firstIndex(of: "=") {
                    let name = RTSPSyntax.trim(item[..<eq])
                    guard RTSPSyntax.isToken(name) else {
                        throw RTSPHeaderError(header: "Transport", reason: "bad parameter name \"\(name)\"")
                    }
                    transport.parameters.append(Parameter(String(name), String(RTSPSyntax.trim(item[item.index(after: eq)...]))))
                } else {
                    guard RTSPSyntax.isToken(item) else {
                        throw RTSPHeaderError(header: "Transport", reason: "bad parameter \"\(item)\"")
                    }
                    transport.parameters.append(Parameter(String(item)))
                }
            }
            for name in ["client_port", "server_port", "port"] {
                if let v = transport[name], RTSPPortRange(Substring(v)) == nil {
                    throw RTSPHeaderError(header: "Transport", reason: "bad \(name) \"\(v)\"")
                }
            }
            if let v = transport["interleaved"], RTSPPortRange(Substring(v), max: 255) == nil {
                throw RTSPHeaderError(header: "Transport", reason: "bad interleaved \"\(v)\"")
            }
            out.append(transport)
        }
        guard !out.isEmpty else { throw RTSPHeaderError(header: "Transport", reason: "empty") }
        return out
    }

    public static func formatList(_ transports: [RTSPTransport]) -> String {
        transports.map(\.description).joined(separator: ",")
    }

    static func hex8(_ v: UInt32) -> String {
        let digits = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// No separators that would change the header's structure.
    private static func clean(_ s: String) -> String {
        RTSPSyntax.singleLine(s).filter { $0 != ";" && $0 != "," }
    }

    /// Splits on `separator` except inside double quotes (mode="PLAY").
    static func splitOutsideQuotes(_ s: String, on separator: Character) -> [Substring] {
        var parts: [Substring] = []
        var quoted = false
        var begin = s.startIndex
        for i in s.indices {
            let c = s[i]
            if c == "\"" { quoted.toggle() }
            if c == separator && !quoted {
                parts.append(s[begin..<i])
                begin = s.index(after: i)
            }
        }
        parts.append(s[begin...])
        return parts
    }
}
