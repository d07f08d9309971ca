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

    @Test("stale, missing, garbled or extreme times are 401",
          arguments: [Optional("-31000"), nil, "soon", "min", "99999999999999999999"])
    func staleTime(offset: String?) {
        let g = makeGuard()
        let time: String? = switch offset {
        case "min": "\(Int64.min)"
        case let o?: Int64(o).map { $0.magnitude < 100_000 ? "\(clock.value + $0)" : o } ?? o
        case nil: nil
        }
        let refusal = g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: time)
        #expect(refusal?.status == .unauthorized && refusal?.reason.contains("request expired or clock skew > 30 s") == true)
        // The edges of the window pass.
        #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value - 30_000)") == nil)
        #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value + 10_000)") == nil)
        #expect(g.remembered == 2)
    }

    @Test("a request time more than 10 s ahead is 401 and leaves nothing behind",
          arguments: [Int64(10_001), 25_000, 31_000, 86_400_000, Int64.max])
    func futureTime(ahead: Int64) {
        let g = makeGuard()
        let time = ahead == Int64.max ? Int64.max : clock.value + ahead
        let refusal = g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(time)")
        #expect(refusal?.status == .unauthorized)
        #expect(refusal?.reason == "request time in the future: clock skew > 10 s (TSMP-Request-Time ahead of ours)")
        #expect(g.remembered == 0 && g.trackedPeers == 0)
    }

    @Test("a future-dated id is kept window + skew after it arrived, no longer")
    func futureDatedRetention() {
        let g = makeGuard()
        let id = RequestGuard.newRequestID()
        let sent = clock.value + 10_000
        #expect(g.check(peer: bob, requestID: id, requestTime: "\(sent)") == nil)
        // Replayable while its time is within the window: refused as a replay throughout.
        clock.advance(40_000)
        #expect(g.check(peer: bob, requestID: id, requestTime: "\(sent)")?.status == .conflict)
        #expect(g.remembered == 1)
        clock.advance(1)
        #expect(g.remembered == 0)
        // By then the request is stale anyway.
        #expect(g.check(peer: bob, requestID: id, requestTime: "\(sent)")?.status == .unauthorized)
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
        // 100 s of requests at 10/s: only the last 40 s (window + skew) are remembered.
        #expect(g.remembered <= 401)
        clock.advance(41_000)
        #expect(g.remembered == 0)
        #expect(g.trackedPeers == 0)
    }

    @Test("per-peer caps: the peer over its rate or its id cap gets 429, others are answered; the global cap is 503")
    func caps() {
        let clock = self.clock
        let alice = try! PeerIdentity.device("laptop.alice@example.com")
        let carol = try! PeerIdentity.device("phone.carol@example.com")
        let g = RequestGuard(limits: .init(requestsPerSecond: 1000, burst: 1000, idsPerPeer: 3, maxRemembered: 5), clock: { clock.value })
        for _ in 0..<3 { #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil) }
        let overCap = g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)")
        #expect(overCap?.status == .tooManyRequests)
        #expect(overCap?.reason == "too many requests from device:phone.bob@example.com: 3 in the last 40 s")
        for _ in 0..<2 { #expect(g.check(peer: alice, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil) }
        let full = g.check(peer: carol, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)")
        #expect(full?.status == .serviceUnavailable)
        #expect(full?.reason == "too many requests: 5 from 2 peers in the last 40 s")
        #expect(g.remembered == 5 && g.trackedPeers == 2)

        let rated = RequestGuard(limits: .init(requestsPerSecond: 2, burst: 4), clock: { clock.value })
        for _ in 0..<4 { #expect(rated.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil) }
        let overRate = rated.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)")
        #expect(overRate?.status == .tooManyRequests)
        #expect(overRate?.reason == "too many requests from device:phone.bob@example.com: more than 2/s (burst 4); retry in 500 ms")
        #expect(rated.check(peer: alice, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil)
        clock.advance(500)
        #expect(rated.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil)
        #expect(rated.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)")?.status == .tooManyRequests)
    }

    @Test("one device's flood of 210,000 requests: it alone gets 429, another device is still accepted")
    func flood() async {
        let g = makeGuard()
        let clock = self.clock, bob = self.bob
        let alice = try! PeerIdentity.device("laptop.alice@example.com")
        struct Tally: Sendable { var accepted = 0, refused = 0, aliceAccepted = 0, reasons: Set<String> = [], statuses: Set<UInt> = [] }
        // 210,000 pipelined requests within about 2 s (the finding's attack), alice's one
        // request every 1,000 among them. Off the cooperative pool: it takes seconds.
        let tally = await offThread { () -> Tally in
            var t = Tally()
            for i in 0..<210_000 {
                if i % 100 == 0 { clock.advance(1) }
                if let refusal = g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") {
                    t.refused += 1
                    t.statuses.insert(refusal.status.code)
                    if t.reasons.count < 3 { t.reasons.insert(String(refusal.reason.prefix(while: { $0 != ";" }))) }
                } else {
                    t.accepted += 1
                }
                if i % 1000 == 0, g.check(peer: alice, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil {
                    t.aliceAccepted += 1
                }
            }
            return t
        }
        #expect(tally.aliceAccepted == 210)
        // The burst (500) and 100/s for 2.1 s.
        #expect(tally.accepted >= 500 && tally.accepted <= 800, "\(tally.accepted)")
        #expect(tally.refused == 210_000 - tally.accepted)
        #expect(tally.statuses == [429])
        #expect(tally.reasons == ["too many requests from device:phone.bob@example.com: more than 100/s (burst 500)"])
        #expect(g.remembered == tally.accepted + tally.aliceAccepted)
    }
}
