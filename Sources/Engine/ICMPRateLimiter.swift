import Wire

/// A token bucket over the ICMP errors the engine translates (RFC 5508 §4.2 leaves rate
/// limiting to the NAT; RFC 1812 §4.3.2.8 asks routers to limit the ICMP they emit): a flood of
/// forged errors toward the NAT address costs the devices and the proxy a bounded amount.
///
/// Invariant: `tokens <= burst`; refills at `perSecond` from the injected clock (sans-IO).
struct ICMPRateLimiter: Sendable {
    let perSecond: Int
    let burst: Int
    private var tokens: Int
    private var last: Instant?

    init(perSecond: Int = 1000, burst: Int = 200) {
        self.perSecond = max(perSecond, 1)
        self.burst = max(burst, 1)
        self.tokens = self.burst
    }

    /// Takes one token; false when none is left (the message is dropped and counted).
    mutating func allow(now: Instant) -> Bool {
        if let last, now.nanoseconds > last.nanoseconds {
            let earned = Int(min((now.nanoseconds - last.nanoseconds) / 1_000_000, 3_600_000)) * perSecond / 1000
            if earned > 0 {
                tokens = min(burst, tokens + earned)
                self.last = now
            }
        } else if last == nil {
            last = now
        }
        guard tokens > 0 else { return false }
        tokens -= 1
        return true
    }
}
