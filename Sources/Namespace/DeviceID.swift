/// A device's identity (DID): `NAME.UID`, e.g. `phone.bob@example.com` (SMP draft §6.1.1).
/// NAME is unique among the user's devices, `[a-z0-9][a-z0-9-]{0,62}` (lowercased, no dots), so
/// the text splits back at its first dot.
public struct DeviceID: Hashable, Codable, Sendable, Comparable, CustomStringConvertible {
    /// The device's name within its user's group.
    public let name: String
    /// The owner.
    public let user: UserID

    /// Validates and lowercases `name` and combines it with `user`.
    public init(name: String, user: UserID) throws(NamespaceError) {
        self.name = try Self.validatedName(name, what: "device name")
        self.user = user
    }

    /// Parses `NAME.UID` at its first dot.
    public init(_ text: String) throws(NamespaceError) {
        guard let dot = text.firstIndex(of: ".") else {
            throw .invalid("device id \"\(text)\": expected NAME.EMAIL (e.g. phone.bob@example.com)")
        }
        let user: UserID
        do { user = try UserID(String(text[text.index(after: dot)...])) } catch {
            throw .invalid("device id \"\(text)\": \(error.description)")
        }
        try self.init(name: String(text[..<dot]), user: user)
    }

    public var description: String { "\(name).\(user.email)" }

    /// Ordered by user, then by name.
    public static func < (a: DeviceID, b: DeviceID) -> Bool {
        (a.user.email, a.name) < (b.user.email, b.name)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do { self = try DeviceID(text) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// A device or proxy name: `[a-z0-9][a-z0-9-]{0,62}` after lowercasing.
    public static func validatedName(_ text: String, what: String) throws(NamespaceError) -> String {
        let name = text.lowercased()
        guard !name.isEmpty else { throw .invalid("\(what) is empty") }
        guard name.utf8.count <= 63 else { throw .invalid("\(what) \"\(text)\": longer than 63 characters") }
        let valid = name.unicodeScalars.enumerated().allSatisfy { index, c in
            ("a"..."z").contains(c) || ("0"..."9").contains(c) || (index > 0 && c == "-")
        }
        guard valid else {
            throw .invalid("\(what) \"\(text)\": only letters, digits and '-' (not first), no dots")
        }
        return name
    }
}
