import Wire

/// A copy of the server's bytes sent toward the device and not yet acknowledged by it
/// (DESIGN §5; TSMP draft §4.3.1: cache "no matter whether it is in the migration state or
/// not"). It holds the contiguous run `[start, end)` of the server's sequence space; a
/// migration resends it to the new device without asking the server to retransmit.
///
/// Invariants: `count == start.distance(to: end) <= storage capacity <= cap`. Bytes are
/// appended only in order; a gap (bytes the copy never saw, or did not keep because of its
/// cap) restarts the copy at the new segment, and `missedBytes` says how many were skipped.
public struct InFlightCopy: Sendable {
    public private(set) var start: SeqNumber
    public private(set) var end: SeqNumber
    public let cap: Int
    public private(set) var missedBytes: UInt64 = 0
    private var ring: [UInt8] = []
    private var head = 0   // index in `ring` of `start`

    public init(start: SeqNumber, cap: Int) {
        self.start = start
        self.end = start
        self.cap = cap
    }

    public var count: Int { Int(start.distance(to: end)) }
    /// Bytes of storage held (what counts against the engine's total budget).
    public var storageBytes: Int { ring.count }

    /// Records a segment's payload at `seq`. Retransmitted bytes are ignored; bytes beyond the
    /// cap are not kept (the copy is then incomplete at its end). Returns the change in
    /// `storageBytes` so the owner can keep its total budget.
    @discardableResult
    public mutating func record(seq: SeqNumber, payload: UnsafeRawBufferPointer, budget: Int,
                                restartOnGap: Bool = true) -> Int {
        guard payload.count > 0 else { return 0 }
        var seq = seq
        var bytes = payload
        let segEnd = seq + UInt32(payload.count)
        if segEnd.lessThanOrEqual(end) { return 0 } // all old
        if seq.lessThan(end) {                      // partly old
            let skip = Int(seq.distance(to: end))
            bytes = UnsafeRawBufferPointer(rebasing: bytes[skip...])
            seq = end
        } else if seq.greaterThan(end) {            // a gap: restart here (unless it must stay contiguous)
            guard restartOnGap else { return 0 }
            missedBytes &+= UInt64(end.distance(to: seq)) &+ UInt64(count)
            start = seq
            end = seq
            head = 0
        }
        let room = cap - count
        guard room > 0 else { return 0 }
        let wanted = min(bytes.count, room)
        let before = ring.count
        ensureCapacity(count + wanted, budget: budget)
        let capacity = ring.count
        // The budget may have refused part of the growth: keep what fits.
        let n = min(wanted, capacity - count)
        guard n > 0 else { return ring.count - before }
        var tail = (head + count) % max(capacity, 1)
        var copied = 0
        ring.withUnsafeMutableBytes { dst in
            while copied < n {
                let chunk = min(n - copied, capacity - tail)
                dst.baseAddress!.advanced(by: tail).copyMemory(from: bytes.baseAddress!.advanced(by: copied), byteCount: chunk)
                copied += chunk
                tail = (tail + chunk) % capacity
            }
        }
        end = end + UInt32(n)
        return ring.count - before
    }

    /// The device acknowledged up to `ack`: drop what is before it.
    public mutating func acknowledge(_ ack: SeqNumber) {
        guard ack.greaterThan(start) else { return }
        if ack.greaterThanOrEqual(end) {
            // Everything held is acknowledged (and maybe bytes the copy never kept).
            start = ack
            end = ack
            head = 0
            return
        }
        let n = Int(start.distance(to: ack))
        head = (head + n) % ring.count
        start = ack
    }

    /// Copies `[from, from + length)` out, if the copy holds all of it.
    public func bytes(from: SeqNumber, length: Int) -> [UInt8]? {
        guard from.greaterThanOrEqual(start), length >= 0,
              (from + UInt32(length)).lessThanOrEqual(end) else { return nil }
        guard length > 0 else { return [] }
        let offset = Int(start.distance(to: from))
        // At most two contiguous runs of the ring: copied whole, not byte by byte.
        let first = (head + offset) % ring.count
        let firstRun = min(length, ring.count - first)
        var out = Array(ring[first..<(first + firstRun)])
        if firstRun < length { out += ring[0..<(length - firstRun)] }
        return out
    }

    /// Releases storage (flow ends). Returns the bytes released.
    public mutating func releaseStorage() -> Int {
        let n = ring.count
        ring = []
        head = 0
        start = end
        return n
    }

    private mutating func ensureCapacity(_ needed: Int, budget: Int) {
        guard needed > ring.count else { return }
        var newCap = max(ring.count * 2, 16 * 1024)
        while newCap < needed { newCap *= 2 }
        newCap = min(newCap, cap)
        let growth = newCap - ring.count
        guard growth > 0 else { return }
        if growth > budget {
            newCap = ring.count + budget
            guard newCap > ring.count else { return }
        }
        // Re-lay the ring linearly into the new storage.
        var fresh = [UInt8](repeating: 0, count: newCap)
        let c = count
        if c > 0 {
            for i in 0..<c { fresh[i] = ring[(head + i) % ring.count] }
        }
        ring = fresh
        head = 0
    }
}
