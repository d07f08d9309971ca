import ControlPlane
import NIOHTTP1
import Synchronization
import Testing

@Suite("Request guard")
struct RequestGuardTests {
    final class Clock: Sendable {
        let now = Mutex<Int64>(1_700_000_000_000)
        func advance(_ ms: Int64) { now.withLock { $0 += ms } }
        var value: Int64 { now.withLock { $0 } }
    }

    let clock = Clock()
    let bob = try! PeerIdentity.device("phone.bob@example.com")
    func makeGuard() -> RequestGuard {
        let clock = self.clock
        return RequestGuard(clock: { clock.value })
    }

    @Test("a fresh request passes once; the same id again is a replay (409)")
    func replay() {
        let g = makeGuard()
        let id = RequestGuard.newRequestID()
        #expect(RequestGuard.isWellFormedID(id))
        #expect(g.check(peer: bob, requestID: id, requestTime: "\(clock.value)") == nil)
        clock.advance(5_000)
        let refusal = g.check(peer: bob, requestID: id, requestTime: "\(clock.value - 5_000)")
        #expect(refusal?.status == .conflict && refusal?.reason.contains("replayed request") == true)
        // Another id from the same peer is fine.
        #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil)
    }

    @Test("no identity is 401")
    func noIdentity() {
        let refusal = makeGuard().check(peer: nil, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)")
        #expect(refusal?.status == .unauthorized && refusal?.reason == "no client identity")
    }

    @Test("stale, future, missing, garbled or extreme times are 401",
          arguments: [Optional("-31000"), "31000", nil, "soon", "min", "max", "99999999999999999999"])
    func staleTime(offset: String?) {
        let g = makeGuard()
        let time: String? = switch offset {
        case "min": "\(Int64.min)"
        case "max": "\(Int64.max)"
        case let o?: Int64(o).map { $0.magnitude < 100_000 ? "\(clock.value + $0)" : o } ?? o
        case nil: nil
        }
        let refusal = g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: time)
        #expect(refusal?.status == .unauthorized && refusal?.reason.contains("request expired or clock skew > 30 s") == true)
        // The edges of the window pass.
        #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value - 30_000)") == nil)
        #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value + 30_000)") == nil)
    }

    @Test("malformed ids are 400", arguments: [nil, "", "abc", String(repeating: "g", count: 32), String(repeating: "a", count: 33)])
    func badID(id: String?) {
        let refusal = makeGuard().check(peer: bob, requestID: id, requestTime: "\(clock.value)")
        #expect(refusal?.status == .badRequest)
    }

    @Test("ids are forgotten once their requests would be stale anyway; memory stays bounded")
    func pruning() {
        let g = makeGuard()
        for _ in 0..<1000 {
            #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil)
            clock.advance(100)
        }
        // 100 s of requests at 10/s: only about the last 30 s (+ the window ahead) are remembered.
        #expect(g.remembered <= 301)
        clock.advance(61_000)
        #expect(g.remembered == 0)
    }

    @Test("over the cap, new requests are refused (503) rather than ids forgotten")
    func cap() {
        let clock = self.clock
        let g = RequestGuard(maxEntries: 3, clock: { clock.value })
        for _ in 0..<3 { #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil) }
        #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)")?.status == .serviceUnavailable)
    }
}
