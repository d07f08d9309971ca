extension RequestGuard {
    /// What a ``RequestGuard`` accepts and how much it may remember.
    ///
    /// Memory is bounded per peer and overall: a peer is limited to ``requestsPerSecond``
    /// (token bucket of ``burst``) and to ``idsPerPeer`` remembered ids; all peers together to
    /// ``maxRemembered`` ids (a peer is tracked only while it has an id remembered, so the
    /// number of tracked peers is bounded by the same figure). An id is forgotten
    /// ``windowMilliseconds`` + ``futureSkewMilliseconds`` after it arrived, by then its request
    /// time is outside the window whatever it claimed. Filling the global store therefore takes
    /// `maxRemembered / idsPerPeer` peers each flooding at its own limit (111 with the
    /// defaults); one peer alone only ever gets its own 429s.
    public struct Limits: Sendable, Equatable {
        /// How far in the past a request time may be (ms): older requests are stale (401).
        public var windowMilliseconds: Int64
        /// How far ahead of our clock a request time may be (ms): further is refused (401),
        /// so a future-dated request cannot make us remember its id for longer.
        public var futureSkewMilliseconds: Int64
        /// Sustained requests per second from one peer (token bucket refill rate).
        public var requestsPerSecond: Int
        /// Requests one peer may send at once after a quiet spell (token bucket size).
        public var burst: Int
        /// Ids remembered for one peer at most; past it, that peer gets 429.
        public var idsPerPeer: Int
        /// Ids remembered for all peers together at most (about 100 bytes each); past it,
        /// every new request gets 503 until ids expire.
        public var maxRemembered: Int

        /// - Parameter idsPerPeer: by default what the rate allows within the time an id is
        ///   kept (`burst + requestsPerSecond * (window + skew)`), so the rate limit is the
        ///   one a steady client meets first.
        public init(windowMilliseconds: Int64 = 30_000, futureSkewMilliseconds: Int64 = 10_000,
                    requestsPerSecond: Int = 100, burst: Int = 500, idsPerPeer: Int? = nil,
                    maxRemembered: Int = 500_000) {
            self.windowMilliseconds = max(1, windowMilliseconds)
            self.futureSkewMilliseconds = max(0, futureSkewMilliseconds)
            self.requestsPerSecond = max(1, requestsPerSecond)
            self.burst = max(1, burst)
            let kept = self.windowMilliseconds + self.futureSkewMilliseconds
            self.idsPerPeer = max(1, idsPerPeer ?? (self.burst + Int(Int64(self.requestsPerSecond) * kept / 1000)))
            self.maxRemembered = max(1, maxRemembered)
        }

        /// How long an accepted id is remembered (ms).
        public var retentionMilliseconds: Int64 { windowMilliseconds + futureSkewMilliseconds }
    }
}
