import ControlPlane
import Foundation
import Logging
import NIOCore
import Testing

/// The endpoint's limits over real loopback sockets (issue 10, findings 3-5): per-peer request
/// limits, deadlines that bytes trickling in do not push back, connection caps per source
/// address, rate-limited refusal logs. Every refused request gets a 4xx with its reason and
/// the handler never runs (counted).
@Suite("Endpoint limits on loopback")
struct EndpointLimitsTests {
    typealias Lab = SecureEndpointTests.Lab

    /// A request with fresh guard headers, as raw HTTP/1.1 text.
    static func request(_ method: String = "GET", _ path: String = "/v1/whoami", identity: String? = "device:laptop.bob@example.com",
                        requestID: String = RequestGuard.newRequestID(), close: Bool = false) -> String {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: x\r\n"
        if let identity { text += "\(HTTPEndpoint.insecureIdentityHeader): \(identity)\r\n" }
        text += "\(RequestGuard.requestIDHeader): \(requestID)\r\n\(RequestGuard.requestTimeHeader): \(RequestGuard.systemMilliseconds())\r\n"
        text += close ? "Connection: close\r\n\r\n" : "\r\n"
        return text
    }

    static func statuses(_ answer: String) -> [Int] {
        answer.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
    }

    @Test("a device sending hundreds of requests past its limit gets 429; another device still gets 200")
    func perPeerFlood() async throws {
        let requestGuard = RequestGuard(limits: .init(requestsPerSecond: 1, burst: 20))
        let lab = try await Lab(security: { _ in .insecureLab }, requestGuard: requestGuard)
        let port = lab.endpoint.localAddress!.port!
        // 300 pipelined requests on one connection from bob's laptop.
        let flood = (0..<299).map { _ in Self.request() }.joined() + Self.request(close: true)
        let answer = await offThread { RawHTTP.exchange(port: port, flood) }
        let statuses = Self.statuses(answer)
        let alice = try PeerClient(baseURL: lab.url, credential: nil, insecureLab: true,
                                   insecureIdentity: try .device("phone.alice@example.com"), expectedServer: nil, group: lab.group)
        let aliceAnswer = try await alice.send("GET", "/v1/whoami")
        await lab.stop()
        #expect(statuses.count == 300, "\(answer.prefix(300))")
        let ok = statuses.filter { $0 == 200 }.count
        #expect(ok >= 20 && ok <= 25, "\(ok)")
        #expect(statuses.filter { $0 == 429 }.count == 300 - ok)
        #expect(answer.contains("too many requests from device:laptop.bob@example.com: more than 1/s (burst 20)"))
        #expect(aliceAnswer.status == 200)
        #expect(lab.calls.value == ok + 1)
    }

    @Test("unknown paths and methods are 404/405 and use no replay entry: the same id then works")
    func unknownPathsFree() async throws {
        let requestGuard = RequestGuard()
        let lab = try await Lab(security: { _ in .insecureLab }, requestGuard: requestGuard)
        let port = lab.endpoint.localAddress!.port!
        let id = RequestGuard.newRequestID()
        let probes = (0..<50).map { _ in Self.request("GET", "/v1/x", requestID: id) }.joined()
            + Self.request("DELETE", "/v1/whoami", requestID: id) + Self.request("GET", "/v1/whoami", requestID: id)
            + Self.request("GET", "/v1/whoami", requestID: id, close: true)
        let answer = await offThread { RawHTTP.exchange(port: port, probes) }
        await lab.stop()
        #expect(Self.statuses(answer) == Array(repeating: 404, count: 50) + [405, 200, 409])
        #expect(answer.contains("no such endpoint: /v1/x"))
        #expect(requestGuard.remembered == 1)
        #expect(lab.calls.value == 1)
    }

    static let short = EndpointLimits(handshakeTimeout: .seconds(1), headerTimeout: .seconds(1), bodyTimeout: .seconds(1))

    /// Sends `head`, then `trickle` one byte every 200 ms until the server closes (8 s at most).
    static func trickle(port: Int, head: String, trickle: String) -> (seconds: Double?, answer: String) {
        guard let socket = RawSocket(port: port) else { return (nil, "connect failed") }
        socket.send(head)
        let start = Date()
        for byte in trickle.prefix(40) {
            socket.drain(milliseconds: 200)
            if socket.closedByServer { break }
            socket.send(String(byte))
        }
        socket.drain(milliseconds: 500)
        return (socket.closedByServer ? Date().timeIntervalSince(start) : nil, socket.text)
    }

    @Test("a body arriving a byte every 200 ms is answered 408 and closed at its 1 s deadline")
    func slowBody() async throws {
        let lab = try await Lab(security: { _ in .insecureLab }, limits: Self.short)
        let port = lab.endpoint.localAddress!.port!
        let head = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        let (seconds, answer) = await offThread { Self.trickle(port: port, head: head, trickle: String(repeating: " ", count: 100)) }
        await lab.stop()
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(answer.contains("request body not complete within 1 s of its head"))
        let s = try #require(seconds, "still open after 8 s")
        #expect(s >= 0.8 && s < 5, "\(s)")
        #expect(lab.calls.value == 0)
    }

    @Test("a head arriving a byte every 200 ms is answered 408 and closed at its 1 s deadline")
    func slowHead() async throws {
        let lab = try await Lab(security: { _ in .insecureLab }, limits: Self.short)
        let port = lab.endpoint.localAddress!.port!
        let (seconds, answer) = await offThread {
            Self.trickle(port: port, head: "GET /v1/whoami HTTP/1.1\r\nX-Slow: ", trickle: String(repeating: "a", count: 100))
        }
        await lab.stop()
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(answer.contains("request head not complete within 1 s"))
        let s = try #require(seconds, "still open after 8 s")
        #expect(s >= 0.8 && s < 5, "\(s)")
        #expect(lab.calls.value == 0)
    }

    @Test("a TLS client that connects and never handshakes is closed at the 1 s handshake deadline")
    func silentTLSClient() async throws {
        let lab = try await Lab(limits: Self.short)
        let port = lab.endpoint.localAddress!.port!
        let (seconds, open) = await offThread { () -> (Double?, Int) in
            guard let socket = RawSocket(port: port) else { return (nil, -1) }
            return (socket.waitForClose(seconds: 5), 0)
        }
        for _ in 0..<50 where lab.endpoint.openConnections() > 0 { try await Task.sleep(for: .milliseconds(20)) }
        let remaining = lab.endpoint.openConnections()
        await lab.stop()
        #expect(open == 0)
        let s = try #require(seconds, "still open after 5 s")
        #expect(s >= 0.8 && s < 5, "\(s)")
        #expect(remaining == 0)
    }

    @Test("keep-alive: the deadlines run per request; an idle connection is closed at the idle timeout")
    func keepAliveAndIdle() async throws {
        var limits = Self.short
        limits.idleTimeout = .milliseconds(1500)
        let lab = try await Lab(security: { _ in .insecureLab }, limits: limits)
        let port = lab.endpoint.localAddress!.port!
        let (statuses, seconds) = await offThread { () -> ([Int], Double?) in
            guard let socket = RawSocket(port: port) else { return ([], nil) }
            // Three requests 700 ms apart on one connection: longer together than any deadline.
            for _ in 0..<3 {
                socket.send(Self.request())
                socket.drain(milliseconds: 700)
            }
            return (Self.statuses(socket.text), socket.waitForClose(seconds: 5))
        }
        await lab.stop()
        #expect(statuses == [200, 200, 200])
        let s = try #require(seconds, "still open after 5 s")
        #expect(s >= 0.5 && s < 4, "\(s)")  // 1.5 s after the last answer, 0.7 s of which already passed
        #expect(lab.calls.value == 3)
    }

    @Test("more connections from one address than the cap are closed at once; another address is answered")
    func connectionCap() async throws {
        let capture = LogCapture()
        let lab = try await Lab(security: { _ in .insecureLab }, limits: EndpointLimits(maxConnectionsPerAddress: 4), logger: capture.logger)
        let port = lab.endpoint.localAddress!.port!
        let held = (0..<4).compactMap { _ in RawSocket(port: port, from: RawSocket.secondLoopback) }
        #expect(held.count == 4)
        for _ in 0..<100 where lab.endpoint.openConnections(from: "127.0.0.2") < 4 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(lab.endpoint.openConnections(from: "127.0.0.2") == 4)
        let refused = await offThread { () -> [Double?] in
            (0..<10).map { _ in RawSocket(port: port, from: RawSocket.secondLoopback)?.waitForClose(seconds: 3) }
        }
        let other = await offThread { RawHTTP.exchange(port: port, Self.request(close: true)) }
        let stillHeld = held.map { s in s.drain(milliseconds: 0); return !s.closedByServer }
        await lab.stop()
        for seconds in refused {
            let s = try #require(seconds, "a connection over the cap was not closed")
            #expect(s < 1, "\(s)")
        }
        #expect(other.hasPrefix("HTTP/1.1 200"), "\(other)")
        #expect(stillHeld == [true, true, true, true])
        #expect(capture.count("connection refused") == 1)  // ten refusals, one line
        #expect(lab.calls.value == 1)
    }

    @Test("over the overall cap, new connections are closed whatever their address")
    func overallCap() async throws {
        let lab = try await Lab(security: { _ in .insecureLab }, limits: EndpointLimits(maxConnections: 2))
        let port = lab.endpoint.localAddress!.port!
        let held = [RawSocket(port: port), RawSocket(port: port, from: RawSocket.secondLoopback)]
        for _ in 0..<100 where lab.endpoint.openConnections() < 2 { try await Task.sleep(for: .milliseconds(20)) }
        let third = await offThread { RawHTTP.exchange(port: port, Self.request(close: true)) }
        await lab.stop()
        #expect(held.allSatisfy { $0 != nil })
        #expect(third.isEmpty, "\(third)")
        #expect(lab.calls.value == 0)
    }

    @Test("refused TLS handshakes are logged once per address per 10 s, not once each")
    func handshakeLogRateLimited() async throws {
        let capture = LogCapture()
        let lab = try await Lab(logger: capture.logger)
        let client = try PeerClient(baseURL: lab.url, tls: try ClientTLS(trustingCA: lab.ca.caPEM),
                                    expectedServer: .identity(.namespace), group: lab.group)
        for _ in 0..<20 {
            _ = try? await client.send("GET", "/v1/whoami")
        }
        for _ in 0..<50 where capture.count("TLS handshake refused") == 0 { try await Task.sleep(for: .milliseconds(20)) }
        await lab.stop()
        #expect(capture.count("TLS handshake refused") == 1)
        #expect(lab.calls.value == 0)
    }

    @Test("the file limit helper raises the soft limit to the hard one and says so")
    func fileLimit() {
        let outcome = FileLimit.raise()
        switch outcome {
        case .raised(let from, let to): #expect(from < to && outcome.description == "file limit raised from \(from) to \(to)")
        case .unchanged(let limit): #expect(limit > 0)
        case .failed(let reason): Issue.record("\(reason)")
        }
        // A second call has nothing left to do.
        #expect(FileLimit.raise() == .unchanged(outcome.current ?? 0))
        #expect(EndpointLimits.fitting(fileLimit: 1024).maxConnections == 896)
        #expect(EndpointLimits.fitting(fileLimit: 1 << 20).maxConnections == 4096)
    }
}
