/// A public identity handed out in order and never reused while the proxy runs: a number
/// that is printed and encoded as itself. `Tag` keeps flow ids and migration ids apart.
public struct Identifier<Tag>: Hashable, Comparable, Sendable, Codable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// A literal id (tests, and results compared with `[5]`).
    public init(integerLiteral value: UInt64) { self.rawValue = value }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt64.self) }
    public func encode(to encoder: any Encoder) throws { var c = encoder.singleValueContainer(); try c.encode(rawValue) }
}

public enum FlowTag {}
public enum MigrationTag {}

/// A flow's public identity: stable for its lifetime.
public typealias FlowID = Identifier<FlowTag>
/// A migration's public identity.
public typealias MigrationID = Identifier<MigrationTag>
