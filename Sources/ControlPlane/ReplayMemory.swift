/// A request id (`TSMP-Request-ID`): 128 bits, kept as two halves rather than its text.
struct RequestID: Hashable, Sendable, CustomStringConvertible {
    let high: UInt64
    let low: UInt64

    /// Parses exactly 32 hex digits (either case); anything else is nil.
    init?(hex: String) {
        guard RequestGuard.isWellFormedID(hex) else { return nil }
        let digits = Array(hex.utf8)
        guard let high = UInt64(String(decoding: digits[0..<16], as: UTF8.self), radix: 16),
              let low = UInt64(String(decoding: digits[16..<32], as: UTF8.self), radix: 16) else { return nil }
        self.high = high
        self.low = low
    }

    var description: String { Self.hex(high) + Self.hex(low) }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// The request guard's state: the ids each peer used recently and each peer's token bucket.
/// Not thread-safe (the guard holds it in a `Mutex`).
///
/// Invariants: every remembered id is in exactly one peer's `ids` and once in `order`;
/// `order` is sorted by `forgetAt` (each id is kept a fixed time after it arrived), so
/// forgetting is popping from its front; a peer is tracked only while it has an id
/// remembered, so `peers.count <= total`.
struct ReplayMemory {
    struct Peer {
        var ids: [RequestID: Int64] = [:]
        var tokens: Double
        var refilledAt: Int64
    }
    enum Outcome: Equatable {
        case accepted(forgetAt: Int64)
        case replayed
        /// Over the peer's rate; a token is back after this many ms.
        case overRate(retryMilliseconds: Int64)
        case overPeerCap(remembered: Int)
        case full(remembered: Int, peers: Int)
    }

    let limits: RequestGuard.Limits
    private(set) var peers: [PeerIdentity: Peer] = [:]
    private var order: [(peer: PeerIdentity, id: RequestID, forgetAt: Int64)] = []
    private var head = 0

    init(limits: RequestGuard.Limits) { self.limits = limits }

    /// Ids remembered now, all peers together.
    var total: Int { order.count - head }

    /// Counts the request against `peer`'s rate and remembers its id, or says why not. Only
    /// an accepted request leaves an id behind.
    mutating func admit(peer: PeerIdentity, id: RequestID, now: Int64) -> Outcome {
        forgetExpired(now: now)
        // Taken out and put back so the dictionary of ids is never copied.
        var record = peers.removeValue(forKey: peer) ?? Peer(tokens: Double(limits.burst), refilledAt: now)
        defer { if !record.ids.isEmpty { peers[peer] = record } }
        if now > record.refilledAt {
            record.tokens = min(Double(limits.burst), record.tokens + Double(now - record.refilledAt) * Double(limits.requestsPerSecond) / 1000)
            record.refilledAt = now
        }
        guard record.tokens >= 1 else {
            let missing = 1 - record.tokens
            return .overRate(retryMilliseconds: max(1, Int64((missing * 1000 / Double(limits.requestsPerSecond)).rounded(.up))))
        }
        record.tokens -= 1
        if record.ids[id] != nil { return .replayed }
        guard record.ids.count < limits.idsPerPeer else { return .overPeerCap(remembered: record.ids.count) }
        guard total < limits.maxRemembered else { return .full(remembered: total, peers: peers.count + (record.ids.isEmpty ? 0 : 1)) }
        let forgetAt = now + limits.retentionMilliseconds
        record.ids[id] = forgetAt
        order.append((peer, id, forgetAt))
        return .accepted(forgetAt: forgetAt)
    }

    /// Puts back ids from a journal (sorted by `forgetAt`, before any `admit`); expired and
    /// duplicate ones are skipped. Returns how many were kept.
    mutating func restore(_ entries: [ReplayJournal.Entry], now: Int64) -> Int {
        var kept = 0
        for entry in entries.sorted(by: { $0.forgetAt < $1.forgetAt }) where entry.forgetAt >= now {
            var record = peers.removeValue(forKey: entry.peer) ?? Peer(tokens: Double(limits.burst), refilledAt: now)
            if record.ids[entry.id] == nil {
                record.ids[entry.id] = entry.forgetAt
                order.append((entry.peer, entry.id, entry.forgetAt))
                kept += 1
            }
            peers[entry.peer] = record
        }
        return kept
    }

    /// The ids still remembered, oldest first (what a compacted journal holds).
    func live(now: Int64) -> [ReplayJournal.Entry] {
        order[head...].filter { $0.forgetAt >= now }.map { ReplayJournal.Entry(peer: $0.peer, id: $0.id, forgetAt: $0.forgetAt) }
    }

    mutating func forgetExpired(now: Int64) {
        while head < order.count, order[head].forgetAt < now {
            let entry = order[head]
            if var record = peers.removeValue(forKey: entry.peer) {
                record.ids[entry.id] = nil
                if !record.ids.isEmpty { peers[entry.peer] = record }
            }
            head += 1
        }
        if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
