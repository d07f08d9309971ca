/// Who is speaking on a control link: a user's device (by DID), a proxy (by name), the
/// namespace's administrator, or the namespace service itself.
///
/// Text form (also the JSON form, a single string): `device:phone.bob@example.com`,
/// `proxy:gw1`, `admin`, `namespace`. In a certificate the identity is the subject
/// alternative name URI `tsmp:` + text form (authoritative, read back by
/// ``PeerIdentity/init(certificate:)``); the subject repeats it for people reading the
/// certificate (CN = text form, OU = role).
public struct PeerIdentity: Hashable, Codable, Sendable, CustomStringConvertible {
    public enum Role: String, Codable, Sendable, CaseIterable {
        case device, proxy, admin, namespace
    }

    public let role: Role
    /// DID for a device, proxy name for a proxy, empty for `admin` and `namespace`.
    public let name: String

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// `device:DID`; throws when `did` is not `NAME.UID`.
    public static func device(_ did: String) throws -> PeerIdentity {
        try PeerIdentity(parsing: "device:\(did)")
    }
    /// `proxy:NAME`; throws when the name is not `[a-z0-9][a-z0-9-]{0,62}`.
    public static func proxy(_ name: String) throws -> PeerIdentity {
        try PeerIdentity(parsing: "proxy:\(name)")
    }
    public static let admin = PeerIdentity(checkedRole: .admin, name: "")
    public static let namespace = PeerIdentity(checkedRole: .namespace, name: "")

    private init(checkedRole: Role, name: String) {
        self.role = checkedRole
        self.name = name
    }

    /// Parses the text form; names are checked (DID = `NAME.UID`, UID an e-mail address in
    /// lower case, NAME `[a-z0-9][a-z0-9-]{0,62}`).
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let role = Role(rawValue: String(parts[0])) else {
            throw Invalid(description: "peer identity '\(text)': unknown role '\(parts[0])' (device, proxy, admin or namespace)")
        }
        let name = parts.count > 1 ? String(parts[1]) : ""
        switch role {
        case .admin, .namespace:
            guard parts.count == 1 else {
                throw Invalid(description: "peer identity '\(text)': '\(role.rawValue)' takes no name")
            }
        case .proxy:
            guard Self.isValidName(name) else {
                throw Invalid(description: "peer identity '\(text)': proxy name must be 1-63 of a-z, 0-9, '-' (not starting with '-')")
            }
        case .device:
            guard Self.isValidDID(name) else {
                throw Invalid(description: "peer identity '\(text)': a device is NAME.UID, e.g. device:phone.bob@example.com (lower case)")
            }
        }
        self.role = role
        self.name = name
    }

    public var description: String {
        name.isEmpty ? role.rawValue : "\(role.rawValue):\(name)"
    }

    /// The user a device belongs to (the UID part of its DID); nil for other roles.
    public var userID: String? {
        guard role == .device, let dot = name.firstIndex(of: ".") else { return nil }
        return String(name[name.index(after: dot)...])
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(parsing: text)
        } catch let error as Invalid {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// A device or proxy name: `[a-z0-9][a-z0-9-]{0,62}`.
    public static func isValidName(_ s: some StringProtocol) -> Bool {
        let u = Array(s.utf8)
        guard (1...63).contains(u.count), u[0] != UInt8(ascii: "-") else { return false }
        return u.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }
    }

    /// A user id: an e-mail address in lower case, printable ASCII without spaces, one '@',
    /// a non-empty local part and a domain with a dot, at most 254 characters.
    public static func isValidUID(_ s: some StringProtocol) -> Bool {
        let u = Array(s.utf8)
        guard (3...254).contains(u.count),
              u.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !($0 >= 0x41 && $0 <= 0x5A) && !"\"(),:;<>[\\]".utf8.contains($0) })
        else { return false }
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { !$0.isEmpty }
    }

    /// A device id: `NAME.UID`.
    public static func isValidDID(_ s: some StringProtocol) -> Bool {
        guard let dot = s.firstIndex(of: ".") else { return false }
        return isValidName(s[..<dot]) && isValidUID(s[s.index(after: dot)...])
    }
}
