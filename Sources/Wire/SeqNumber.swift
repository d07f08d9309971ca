/// A TCP sequence number: 32-bit modular arithmetic (RFC 9293 §3.4). Comparisons are only
/// meaningful between numbers less than 2^31 apart; they never trap on wrap.
public struct SeqNumber: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// `self + n`, wrapping.
    @inlinable public static func + (a: SeqNumber, n: UInt32) -> SeqNumber { SeqNumber(a.rawValue &+ n) }
    /// `self - n`, wrapping.
    @inlinable public static func - (a: SeqNumber, n: UInt32) -> SeqNumber { SeqNumber(a.rawValue &- n) }
    @inlinable public static func += (a: inout SeqNumber, n: UInt32) { a.rawValue &+= n }

    /// Signed distance from `b` to `a` (`a - b`), in -2^31 ..< 2^31.
    @inlinable public static func - (a: SeqNumber, b: SeqNumber) -> Int32 { Int32(bitPattern: a.rawValue &- b.rawValue) }

    /// The forward distance from `self` to `later` (`later - self` as unsigned), for sizes.
    @inlinable public func distance(to later: SeqNumber) -> UInt32 { later.rawValue &- rawValue }

    @inlinable public func lessThan(_ b: SeqNumber) -> Bool { (self - b) < 0 }
    @inlinable public func lessThanOrEqual(_ b: SeqNumber) -> Bool { (self - b) <= 0 }
    @inlinable public func greaterThan(_ b: SeqNumber) -> Bool { (self - b) > 0 }
    @inlinable public func greaterThanOrEqual(_ b: SeqNumber) -> Bool { (self - b) >= 0 }

    /// `first <= self < first + size` (RFC 9293 §3.10.7.4 acceptability test shape).
    @inlinable public func inWindow(_ first: SeqNumber, size: UInt32) -> Bool {
        first.distance(to: self) < size
    }

    /// The later of two numbers in sequence space.
    @inlinable public static func max(_ a: SeqNumber, _ b: SeqNumber) -> SeqNumber { a.greaterThan(b) ? a : b }
    @inlinable public static func min(_ a: SeqNumber, _ b: SeqNumber) -> SeqNumber { a.lessThan(b) ? a : b }

    public var description: String { String(rawValue) }
}

/// A constant shift between two sequence spaces: `mapped = original + delta` (wrapping).
/// Zero until a migration splices a new sub-connection with another initial sequence number.
public struct SequenceOffset: Hashable, Sendable, CustomStringConvertible {
    public var delta: UInt32
    @inlinable public init(delta: UInt32 = 0) { self.delta = delta }
    /// The offset that maps `from` onto `to`.
    @inlinable public init(from: SeqNumber, to: SeqNumber) { delta = to.rawValue &- from.rawValue }
    @inlinable public var isZero: Bool { delta == 0 }
    @inlinable public func apply(_ s: SeqNumber) -> SeqNumber { SeqNumber(s.rawValue &+ delta) }
    @inlinable public func reverse(_ s: SeqNumber) -> SeqNumber { SeqNumber(s.rawValue &- delta) }
    @inlinable public var inverse: SequenceOffset { SequenceOffset(delta: 0 &- delta) }
    public var description: String { "+\(delta)" }
}
