import Wire

/// What the device reported holding above its cumulative ack (RFC 2018 SACK blocks, already
/// in the server's sequence space): the emulated sender's scoreboard (RFC 6675 §3), so that
/// recovery resends only holes and never bytes the device has.
///
/// Invariants: `blocks` are sorted, non-empty, disjoint and not touching; every block lies in
/// `(una, highestSent]` as last given to `add`/`acknowledge`; at most `capacity` blocks (the
/// device's blocks are untrusted input: a flood of tiny ones must not grow it without bound).
struct SackScoreboard: Sendable, Equatable {
    private(set) var blocks: [SackBlock] = []
    /// Bytes SACKed above the cumulative ack.
    private(set) var bytes = 0

    static let capacity = 32

    var isEmpty: Bool { blocks.isEmpty }
    /// The right edge of the highest SACKed block (RFC 6675's highest SACKed sequence + 1).
    var highestSacked: SeqNumber? { blocks.last?.right }

    /// Records `reported` blocks, clipped to `(una, highestSent]`; blocks with no bytes there
    /// (D-SACKs below the ack, edges past what was sent, `left >= right`) are ignored.
    /// Returns how many bytes were newly SACKed.
    @discardableResult
    mutating func add(_ reported: [SackBlock], una: SeqNumber, highestSent: SeqNumber) -> Int {
        let before = bytes
        for block in reported {
            let left = SeqNumber.max(block.left, una)
            let right = block.right.greaterThan(highestSent) ? highestSent : block.right
            guard left.lessThan(right) else { continue }
            insert(SackBlock(left, right))
        }
        return bytes - before
    }

    /// The cumulative ack moved to `ack`: what lies below it is no longer on the scoreboard.
    mutating func acknowledge(_ ack: SeqNumber) {
        blocks = blocks.compactMap { b in
            if b.right.lessThanOrEqual(ack) { return nil }
            return b.left.lessThan(ack) ? SackBlock(ack, b.right) : b
        }
        recount()
    }

    /// Forgets every block (RFC 2018 §8: after a retransmission timeout the receiver may have
    /// reneged, so the sender no longer trusts what it SACKed).
    mutating func clear() {
        blocks = []
        bytes = 0
    }

    /// Whether `seq` lies in a SACKed block.
    func contains(_ seq: SeqNumber) -> Bool {
        blocks.contains { $0.left.lessThanOrEqual(seq) && seq.lessThan($0.right) }
    }

    /// The first hole at or above `from` that lies below a SACKed block (RFC 6675 §4 NextSeg
    /// rule 1: only bytes below the highest SACKed one count as lost), at most `maxLength`
    /// bytes and never into a SACKed block. nil when no such hole exists.
    func firstHole(from: SeqNumber, maxLength: Int) -> (seq: SeqNumber, length: Int)? {
        var start = from
        for b in blocks {
            if b.right.lessThanOrEqual(start) { continue }
            if b.left.lessThanOrEqual(start) { start = b.right; continue }
            return (start, min(maxLength, Int(start.distance(to: b.left))))
        }
        return nil
    }

    private mutating func insert(_ new: SackBlock) {
        var merged = new
        var kept: [SackBlock] = []
        kept.reserveCapacity(blocks.count + 1)
        for b in blocks {
            if b.right.lessThan(merged.left) || merged.right.lessThan(b.left) {
                kept.append(b)
            } else {
                merged = SackBlock(SeqNumber.min(b.left, merged.left), SeqNumber.max(b.right, merged.right))
            }
        }
        let at = kept.firstIndex { merged.right.lessThan($0.left) } ?? kept.count
        kept.insert(merged, at: at)
        // Over capacity: keep the lowest blocks (those recovery reaches first).
        if kept.count > Self.capacity { kept.removeLast(kept.count - Self.capacity) }
        blocks = kept
        recount()
    }

    private mutating func recount() {
        bytes = blocks.reduce(0) { $0 + Int($1.left.distance(to: $1.right)) }
    }
}
