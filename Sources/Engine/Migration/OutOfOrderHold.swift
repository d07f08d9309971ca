import Wire

/// Server segments that arrived past a gap while the proxy holds a flow frozen, and so is the
/// server's receiver (issue "Real-network TCP" item 3). A good receiver keeps them and reports
/// them in SACK blocks (RFC 2018 §4), so the server retransmits only the hole, at once
/// (RFC 6675; Linux: RACK) instead of waiting for a tail-loss probe or its RTO. When the hole
/// fills, they are appended to the in-flight copy in order.
///
/// Bounded per migration: at most `maxPieces` pieces and `capBytes` bytes (the flow's copy
/// cap); what does not fit is not kept and the server sends it again.
struct OutOfOrderHold: Sendable {
    struct Piece: Sendable {
        var seq: SeqNumber
        var bytes: [UInt8]
        var end: SeqNumber { seq + UInt32(bytes.count) }
    }

    static let maxPieces = 64
    let capBytes: Int
    /// Sorted by `seq`; pieces may overlap (a retransmission overlapping two others).
    private(set) var pieces: [Piece] = []
    private(set) var byteCount = 0

    init(capBytes: Int) { self.capBytes = capBytes }

    var isEmpty: Bool { pieces.isEmpty }

    /// Keeps `payload` at `seq` (past the copy's end). Returns whether it was kept.
    @discardableResult
    mutating func insert(seq: SeqNumber, payload: UnsafeRawBufferPointer) -> Bool {
        guard !payload.isEmpty, pieces.count < Self.maxPieces, byteCount + payload.count <= capBytes else { return false }
        let end = seq + UInt32(payload.count)
        // Already held whole: nothing to add (a duplicate).
        if pieces.contains(where: { $0.seq.lessThanOrEqual(seq) && end.lessThanOrEqual($0.end) }) { return true }
        let index = pieces.firstIndex { seq.lessThan($0.seq) } ?? pieces.count
        pieces.insert(Piece(seq: seq, bytes: Array(payload)), at: index)
        byteCount += payload.count
        return true
    }

    /// Removes and returns, in order, the pieces that start at or before `end` (the copy's end):
    /// they continue the copy now (or are old).
    mutating func takeContiguous(upTo end: SeqNumber) -> [Piece] {
        var taken: [Piece] = []
        var edge = end
        while let first = pieces.first, first.seq.lessThanOrEqual(edge) {
            pieces.removeFirst()
            byteCount -= first.bytes.count
            if first.end.greaterThan(edge) { edge = first.end }
            taken.append(first)
        }
        return taken
    }

    /// The held ranges merged, the one containing `latest` first (RFC 2018 §4: the first block
    /// reports the most recent segment), then the others in order; at most `limit`.
    func sackBlocks(latest: SeqNumber?, limit: Int) -> [SackBlock] {
        var merged: [SackBlock] = []
        for p in pieces {
            if let last = merged.last, p.seq.lessThanOrEqual(last.right) {
                if p.end.greaterThan(last.right) { merged[merged.count - 1].right = p.end }
            } else {
                merged.append(SackBlock(p.seq, p.end))
            }
        }
        if let latest, let i = merged.firstIndex(where: { $0.left.lessThanOrEqual(latest) && latest.lessThan($0.right) }), i > 0 {
            merged.insert(merged.remove(at: i), at: 0)
        }
        return Array(merged.prefix(limit))
    }
}

extension SpliceEngine {
    /// While the proxy is the server's receiver: keeps a server segment that lies past the
    /// copy's end (`copyEndBefore`: before this segment), and appends held pieces to the copy
    /// once the hole before them filled. Returns the copy's growth in storage bytes.
    @discardableResult
    func holdOutOfOrder(_ tcp: TCPSegment, slot: Int, mid: MigrationID, copyEndBefore: SeqNumber) -> Int {
        guard var m = migrations[mid], var freeze = m.freeze, let copy = table[slot: slot]?.inFlight else { return 0 }
        if tcp.payloadLength > 0, tcp.seq.greaterThan(copyEndBefore), tcp.seq.greaterThan(copy.end) {
            freeze.held.insert(seq: tcp.seq, payload: UnsafeRawBufferPointer(tcp.payload))
        }
        let pieces = freeze.held.takeContiguous(upTo: copy.end)
        m.updateFreeze { $0.held = freeze.held }
        migrations[mid] = m
        guard !pieces.isEmpty else { return 0 }
        var grew = 0
        withFlow(slot) { f in
            for p in pieces {
                let budget = max(0, config.limits.inFlightTotal - inFlightStorageBytes - grew)
                grew += p.bytes.withUnsafeBytes { f.inFlight?.record(seq: p.seq, payload: $0, budget: budget, restartOnGap: false) ?? 0 }
            }
        }
        inFlightStorageBytes += grew
        return grew
    }
}
