@testable import ControlPlane
import NIOCore
import Testing

@Suite("Rate-limited log lines")
struct RateLimitedLogTests {
    @Test("one line per key per interval, the next one with the count left out")
    func perKey() {
        let log = RateLimitedLog(interval: .seconds(10), maxKeys: 2)
        let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(log.admit("a", now: t0) == 0)
        for i in 1...694 { #expect(log.admit("a", now: t0 + .milliseconds(Int64(i))) == nil) }
        #expect(log.admit("b", now: t0 + .seconds(1)) == 0)  // another address has its own line
        #expect(log.admit("a", now: t0 + .seconds(10)) == 694)
        #expect(log.admit("a", now: t0 + .seconds(11)) == nil)
        // Past maxKeys, new keys share one slot.
        #expect(log.admit("c", now: t0 + .seconds(12)) == 0)
        #expect(log.admit("d", now: t0 + .seconds(12)) == 0)
        #expect(log.admit("e", now: t0 + .seconds(12)) == nil)
    }
}
