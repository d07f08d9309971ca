import Foundation
import NIOHTTP1
import Synchronization

/// The checks every request on an authenticated endpoint passes before its handler runs:
/// a client identity, a fresh `TSMP-Request-Time` (within ±window of now, ms since the
/// epoch) and a `TSMP-Request-ID` (32 hex digits, 128 random bits) not seen from this peer
/// within the window. A request older than the window is refused as stale, so ids only need
/// remembering for that long: memory is bounded by the request rate times the window, and a
/// hard cap (``maxEntries``) refuses new requests (503) rather than forgetting ids.
public final class RequestGuard: Sendable {
    public static let requestIDHeader = "TSMP-Request-ID"
    public static let requestTimeHeader = "TSMP-Request-Time"

    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let status: HTTPResponseStatus
        public let reason: String
        public var description: String { "\(status.code) \(reason)" }
    }

    public let windowMilliseconds: Int64
    public let maxEntries: Int
    private let clock: @Sendable () -> Int64

    private struct Seen {
        /// peer + id -> when it may be forgotten (ms).
        var expiry: [String: Int64] = [:]
        /// Insertion order, for pruning from the front.
        var order: [(key: String, expiry: Int64)] = []
        var head = 0
    }
    private let seen = Mutex(Seen())

    /// - Parameter clock: now, in ms since the epoch (tests inject their own).
    public init(windowMilliseconds: Int64 = 30_000, maxEntries: Int = 200_000,
                clock: @escaping @Sendable () -> Int64 = RequestGuard.systemMilliseconds) {
        self.windowMilliseconds = windowMilliseconds
        self.maxEntries = maxEntries
        self.clock = clock
    }

    @Sendable public static func systemMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Accepts (nil) or refuses a request; an accepted request's id is remembered.
    public func check(peer: PeerIdentity?, requestID: String?, requestTime: String?) -> Refusal? {
        guard let peer else { return Refusal(status: .unauthorized, reason: "no client identity") }
        let now = clock()
        // Compared without subtracting the client's number (no overflow on any Int64).
        guard let text = requestTime, let time = Int64(text),
              time >= now - windowMilliseconds, time <= now + windowMilliseconds else {
            return Refusal(status: .unauthorized,
                           reason: "request expired or clock skew > \(windowMilliseconds / 1000) s (\(Self.requestTimeHeader) missing or not within the window)")
        }
        guard let id = requestID, Self.isWellFormedID(id) else {
            return Refusal(status: .badRequest, reason: "\(Self.requestIDHeader) must be 32 hex digits")
        }
        let key = "\(peer) \(id.lowercased())"
        let forgetAt = max(now, time) + windowMilliseconds
        return seen.withLock { seen -> Refusal? in
            Self.prune(&seen, now: now)
            if let until = seen.expiry[key], until >= now {
                return Refusal(status: .conflict, reason: "replayed request (\(Self.requestIDHeader) \(id) already seen)")
            }
            guard seen.expiry.count < maxEntries else {
                return Refusal(status: .serviceUnavailable, reason: "too many requests in the last \(windowMilliseconds / 1000) s")
            }
            seen.expiry[key] = forgetAt
            seen.order.append((key, forgetAt))
            return nil
        }
    }

    /// How many request ids are remembered now (for tests and metrics).
    public var remembered: Int {
        let now = clock()
        return seen.withLock { seen in
            Self.prune(&seen, now: now)
            return seen.expiry.count
        }
    }

    private static func prune(_ seen: inout Seen, now: Int64) {
        while seen.head < seen.order.count, seen.order[seen.head].expiry < now {
            let entry = seen.order[seen.head]
            if seen.expiry[entry.key] == entry.expiry { seen.expiry[entry.key] = nil }
            seen.head += 1
        }
        if seen.head > 1024, seen.head * 2 > seen.order.count {
            seen.order.removeFirst(seen.head)
            seen.head = 0
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
