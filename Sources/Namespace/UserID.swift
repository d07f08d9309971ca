/// A user's identity (UID): the e-mail address the user registered with, lowercased
/// (SMP draft §6.1.1). Built only through the validating initialiser, so every value is valid.
public struct UserID: Hashable, Codable, Sendable, Comparable, CustomStringConvertible {
    /// The lowercased e-mail address.
    public let email: String

    /// The longest e-mail address accepted (RFC 5321 §4.5.3.1.3: a path of 256 octets less the brackets).
    public static let maximumLength = 254

    /// Validates and lowercases `text`: `local@domain`, the local part of RFC 5322's dot-atom
    /// characters (no leading, trailing or double dot, at most 64), the domain of at least two
    /// DNS labels (letters, digits and inner hyphens, at most 63 each).
    public init(_ text: String) throws(NamespaceError) {
        let email = text.lowercased()
        func refuse(_ why: String) -> NamespaceError { .invalid("user id \"\(text)\": \(why)") }
        guard !email.isEmpty else { throw refuse("empty (expected an e-mail address)") }
        guard email.utf8.count <= Self.maximumLength else { throw refuse("longer than \(Self.maximumLength) characters") }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw refuse("expected exactly one '@' (an e-mail address)") }
        let local = parts[0], domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= 64 else { throw refuse("the part before '@' must have 1 to 64 characters") }
        guard local.unicodeScalars.allSatisfy(Self.isLocalCharacter) else {
            throw refuse("the part before '@' may hold only letters, digits and !#$%&'*+/=?^_`{|}~.-")
        }
        guard local.first != ".", local.last != ".", !local.contains("..") else {
            throw refuse("the part before '@' cannot start or end with a dot or hold two dots in a row")
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { throw refuse("the domain \"\(domain)\" needs at least two labels (example.com)") }
        for label in labels {
            guard Self.isDomainLabel(label) else {
                throw refuse("domain label \"\(label)\" must have 1 to 63 letters, digits or inner hyphens")
            }
        }
        self.email = email
    }

    public var description: String { email }

    public static func < (a: UserID, b: UserID) -> Bool { a.email < b.email }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do { self = try UserID(text) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(email)
    }

    private static func isLocalCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "a"..."z", "0"..."9": return true
        default: return "!#$%&'*+/=?^_`{|}~.-".unicodeScalars.contains(c)
        }
    }

    /// A DNS label: 1 to 63 of [a-z0-9-], not starting or ending with '-'.
    static func isDomainLabel(_ label: Substring) -> Bool {
        guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
        return label.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }
}
