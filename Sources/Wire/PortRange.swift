/// An inclusive range of TCP ports, written `PORT` or `LO-HI`.
public struct PortRange: Hashable, Sendable, Codable, CustomStringConvertible {
    public var lower: UInt16
    public var upper: UInt16
    public init(_ lower: UInt16, _ upper: UInt16) { self.lower = lower; self.upper = upper }
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let lo = UInt16(parts[0]), let hi = UInt16(parts.last!), lo >= 1, lo <= hi else { return nil }
        self.init(lo, hi)
    }
    public func contains(_ p: UInt16) -> Bool { p >= lower && p <= upper }
    public var count: Int { Int(upper) - Int(lower) + 1 }
    public func overlaps(_ o: PortRange) -> Bool { lower <= o.upper && o.lower <= upper }
    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}
