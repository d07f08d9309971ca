import Foundation
import Wire

/// HOST:PORT on the command line (issue "IPv6 and dual stack", item 4): HOST an IPv4 address, an
/// IPv6 address in brackets (`[2001:db8::1]:7443`), or a host name the system resolver turns
/// into addresses (/etc/hosts, DNS).
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    /// Without brackets.
    public var host: String
    public var port: Int

    public static let expected = "an IPv4 or IPv6 address, or a host name"

    /// Parses `text` given to `flag`; the error says what was expected.
    public init(parsing text: String, flag: String, allowPortZero: Bool = false) throws(HostPortError) {
        let shape: String = "\(flag) \"\(text)\": expected HOST:PORT, HOST \(Self.expected) (10.0.0.1:7443, [2001:db8::1]:7443, gw.example:7443)"
        let host: Substring, portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw HostPortError(shape)
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard Self.isIPv6(String(host)) else { throw HostPortError("\(flag) \"\(text)\": \"\(host)\" in brackets is not an IPv6 address") }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw HostPortError(shape) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                throw HostPortError("\(flag) \"\(text)\": an IPv6 address takes brackets before its port, as in [2001:db8::1]:7443")
            }
            guard Self.isHost(String(host)) else { throw HostPortError(shape) }
        }
        guard let port = Int(portText), (allowPortZero ? 0 : 1)...65535 ~= port else {
            throw HostPortError("\(flag) \"\(text)\": the port must be \(allowPortZero ? 0 : 1)-65535, not \"\(portText)\"")
        }
        self.host = String(host)
        self.port = port
    }

    public var description: String { Self.authority(host, port) }

    /// `HOST:PORT` as a URL's authority: an IPv6 literal in brackets (RFC 3986 §3.2.2).
    public static func authority(_ host: String, _ port: Int) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The URL of a control-plane endpoint at `host:port`: plain HTTP under `--insecure-lab`,
    /// HTTPS (mutual TLS) otherwise.
    public static func url(_ host: String, _ port: Int, insecureLab: Bool) -> String {
        "\(insecureLab ? "http" : "https")://\(authority(host, port))"
    }

    /// An IPv4 address, an IPv6 address (no brackets) or a host name (RFC 1123 labels).
    public static func isHost(_ host: String) -> Bool { isIPv4(host) || isIPv6(host) || isName(host) }

    public static func isIPv4(_ text: String) -> Bool { IPv4Address(text) != nil }

    public static func isIPv6(_ text: String) -> Bool { IPv6Address(text) != nil }

    /// Letters, digits and hyphens in dot-separated labels of 1-63 characters, no label
    /// starting or ending with a hyphen, at most 253 characters; not all digits and dots (that
    /// would be a mistyped IPv4 address).
    public static func isName(_ text: String) -> Bool {
        let name = text.hasSuffix(".") ? String(text.dropLast()) : text
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        guard name.contains(where: { $0.isLetter }) else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D }
        }
    }

    /// The host and port of an http(s):// URL given to `flag`, checked like HOST:PORT.
    public init(url: String, flag: String) throws(HostPortError) {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              var host = c.host, !host.isEmpty else {
            throw HostPortError("\(flag) must be an http(s)://HOST:PORT URL, HOST \(Self.expected), not \"\(url)\"")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard Self.isHost(host) else {
            throw HostPortError("\(flag) \(url): \"\(host)\" is not \(Self.expected)\(host.contains(":") ? " (an IPv6 address takes brackets: https://[2001:db8::1]:7443)" : "")")
        }
        self.init(host: host, port: c.port ?? (scheme == "https" ? 443 : 80))
    }

    public init(host: String, port: Int) { self.host = host; self.port = port }
}

/// Why a HOST:PORT or URL was refused, naming the flag and what was expected.
public struct HostPortError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
