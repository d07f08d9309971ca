import Foundation
import Logging
import NIOHTTP1
import Synchronization

/// The checks every request on an authenticated endpoint passes before its handler runs
/// (after its route is found: an unknown path is a 404 and costs nothing here):
/// a client identity, a fresh `TSMP-Request-Time` (ms since the epoch, at most
/// ``Limits/windowMilliseconds`` old and at most ``Limits/futureSkewMilliseconds`` ahead of
/// our clock) and a `TSMP-Request-ID` (32 hex digits, 128 random bits) not seen from this peer
/// while a request carrying it could still be fresh.
///
/// Limits are per peer (issue 10, finding 3: one device's flood must not lock out the
/// others): each peer has a token bucket (``Limits/requestsPerSecond``, ``Limits/burst``)
/// and a cap on its remembered ids (``Limits/idsPerPeer``); past either, that peer alone gets
/// 429 with the reason. All peers together are bounded by ``Limits/maxRemembered`` ids (503
/// past it), which one peer cannot reach. An id is remembered window + skew after it arrived
/// and then forgotten, so a request claiming a time in the future cannot pin memory either.
///
/// With a journal (``init(limits:journalPath:logger:clock:)``) the remembered ids survive a
/// restart of the service (see ``ReplayJournal`` for what it keeps and for how long).
public final class RequestGuard: Sendable {
    public static let requestIDHeader = "TSMP-Request-ID"
    public static let requestTimeHeader = "TSMP-Request-Time"

    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let status: HTTPResponseStatus
        public let reason: String
        public var description: String { "\(status.code) \(reason)" }
    }

    public let limits: Limits
    public var windowMilliseconds: Int64 { limits.windowMilliseconds }
    private let clock: @Sendable () -> Int64

    private struct State {
        var memory: ReplayMemory
        var journal: ReplayJournal?
    }
    private let state: Mutex<State>

    /// A guard that remembers ids in memory only.
    /// - Parameter clock: now, in ms since the epoch (tests inject their own).
    public init(limits: Limits = Limits(), clock: @escaping @Sendable () -> Int64 = RequestGuard.systemMilliseconds) {
        self.limits = limits
        self.clock = clock
        state = Mutex(State(memory: ReplayMemory(limits: limits), journal: nil))
    }

    /// A guard whose accepted ids are also written to `journalPath` (and read back from it
    /// here, so ids accepted before a restart are still refused as replays). Throws when the
    /// journal cannot be read or written, with the path in the message.
    public init(limits: Limits = Limits(), journalPath: String, logger: Logger,
                clock: @escaping @Sendable () -> Int64 = RequestGuard.systemMilliseconds) throws(PKIError) {
        self.limits = limits
        self.clock = clock
        let now = clock()
        let journal = ReplayJournal(path: journalPath, retentionMilliseconds: limits.retentionMilliseconds, logger: logger)
        let loaded = try journal.load()
        var memory = ReplayMemory(limits: limits)
        let kept = memory.restore(loaded.entries, now: now)
        try journal.start(with: memory.live(now: now), now: now)
        logger.info("replay journal loaded", metadata: [
            "journal.path": "\(journalPath)", "journal.ids": "\(kept)",
            "journal.expired": "\(loaded.entries.count - kept)", "journal.skipped_lines": "\(loaded.skippedLines)",
        ])
        state = Mutex(State(memory: memory, journal: journal))
    }

    @Sendable public static func systemMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Accepts (nil) or refuses a request; an accepted request's id is remembered (and
    /// journaled). A refused request leaves nothing behind but a spent token.
    public func check(peer: PeerIdentity?, requestID: String?, requestTime: String?) -> Refusal? {
        guard let peer else { return Refusal(status: .unauthorized, reason: "no client identity") }
        let now = clock()
        // Compared without subtracting the client's number (no overflow on any Int64).
        guard let text = requestTime, let time = Int64(text), time >= now - limits.windowMilliseconds else {
            return Refusal(status: .unauthorized,
                           reason: "request expired or clock skew > \(limits.windowMilliseconds / 1000) s (\(Self.requestTimeHeader) missing or not within the window)")
        }
        guard time <= now + limits.futureSkewMilliseconds else {
            return Refusal(status: .unauthorized,
                           reason: "request time in the future: clock skew > \(limits.futureSkewMilliseconds / 1000) s (\(Self.requestTimeHeader) ahead of ours)")
        }
        guard let text = requestID, let id = RequestID(hex: text) else {
            return Refusal(status: .badRequest, reason: "\(Self.requestIDHeader) must be 32 hex digits")
        }
        let retention = limits.retentionMilliseconds / 1000
        return state.withLock { state -> Refusal? in
            switch state.memory.admit(peer: peer, id: id, now: now) {
            case .accepted(let forgetAt):
                state.journal?.append(.init(peer: peer, id: id, forgetAt: forgetAt), now: now)
                return nil
            case .replayed:
                return Refusal(status: .conflict, reason: "replayed request (\(Self.requestIDHeader) \(text) already seen)")
            case .overRate(let retry):
                return Refusal(status: .tooManyRequests,
                               reason: "too many requests from \(peer): more than \(limits.requestsPerSecond)/s (burst \(limits.burst)); retry in \(retry) ms")
            case .overPeerCap(let remembered):
                return Refusal(status: .tooManyRequests,
                               reason: "too many requests from \(peer): \(remembered) in the last \(retention) s")
            case .full(let remembered, let peers):
                return Refusal(status: .serviceUnavailable,
                               reason: "too many requests: \(remembered) from \(peers) peers in the last \(retention) s")
            }
        }
    }

    /// How many request ids are remembered now, all peers together (for tests and metrics).
    public var remembered: Int {
        let now = clock()
        return state.withLock { state in
            state.memory.forgetExpired(now: now)
            return state.memory.total
        }
    }

    /// How many peers have ids remembered now.
    public var trackedPeers: Int {
        let now = clock()
        return state.withLock { state in
            state.memory.forgetExpired(now: now)
            return state.memory.peers.count
        }
    }

    public static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) }
    }

    /// A new request id: 128 random bits as 32 lower-case hex digits.
    public static func newRequestID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let v = g.next() as UInt64
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
    }
}
