import Wire

/// Hands out ports of the NAT address from a range, next-fit: the search starts after the
/// last port handed out, so a released port is reused as late as possible (the server may
/// still hold the old 4-tuple in TIME-WAIT, RFC 9293 §3.6.1). The first search starts at
/// `start` (an offset into the range): a proxy started again draws it at random, so its first
/// flows do not take the ports its predecessor's last flows left in TIME-WAIT (RFC 6056 §3.3.2
/// draws the first port of its searches the same way). A bitmap: 8 KiB for all ports.
public struct NATPortAllocator: Sendable {
    public let range: PortRange
    private var used: [UInt64]
    private var cursor: Int
    public private(set) var inUse = 0

    public init(range: PortRange, start: UInt32 = 0) {
        self.range = range
        used = Array(repeating: 0, count: (range.count + 63) / 64)
        cursor = range.count > 0 ? Int(start % UInt32(range.count)) : 0
    }

    public var capacity: Int { range.count }

    /// A free port, or nil when every port is taken.
    public mutating func allocate() -> UInt16? {
        guard inUse < range.count else { return nil }
        let n = range.count
        var i = cursor
        for _ in 0..<n {
            if used[i >> 6] & (1 << UInt64(i & 63)) == 0 {
                used[i >> 6] |= 1 << UInt64(i & 63)
                inUse += 1
                cursor = (i + 1) % n
                return UInt16(Int(range.lower) + i)
            }
            i = (i + 1) % n
        }
        return nil
    }

    /// Takes `port` itself (a flow adopted from a checkpoint keeps its port); false when it is
    /// outside the range or taken.
    public mutating func claim(_ port: UInt16) -> Bool {
        guard range.contains(port), !isInUse(port) else { return false }
        let i = Int(port - range.lower)
        used[i >> 6] |= 1 << UInt64(i & 63)
        inUse += 1
        return true
    }

    /// Returns a port; releasing a port that is not in use does nothing.
    public mutating func release(_ port: UInt16) {
        guard range.contains(port) else { return }
        let i = Int(port - range.lower)
        if used[i >> 6] & (1 << UInt64(i & 63)) != 0 {
            used[i >> 6] &= ~(1 << UInt64(i & 63))
            inUse -= 1
        }
    }

    public func isInUse(_ port: UInt16) -> Bool {
        guard range.contains(port) else { return false }
        let i = Int(port - range.lower)
        return used[i >> 6] & (1 << UInt64(i & 63)) != 0
    }
}
