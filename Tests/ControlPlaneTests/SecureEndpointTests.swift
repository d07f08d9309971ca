import ControlPlane
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// The authenticated endpoint and the client over real loopback TLS: a good client gets its
/// answer with its identity at the handler; every refused request is refused with a clear
/// error and the handler never runs (handler invocations are counted).
@Suite("Mutual TLS endpoint and client on loopback")
struct SecureEndpointTests {
    struct Echo: Codable, Equatable { var text: String }
    struct WhoAmI: Codable { var peer: String }

    final class Counter: Sendable {
        let count = Mutex(0)
        func bump() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    /// A namespace CA, a server with the namespace's credential on 127.0.0.1, and counted routes.
    final class Lab: Sendable {
        let ca: CertificateAuthority
        let group: MultiThreadedEventLoopGroup
        let endpoint: HTTPEndpoint
        let calls = Counter()
        let url: String
        /// Holds `GET /v1/slow` until the test finishes it.
        let gate = AsyncStream<Void>.makeStream()

        init(host: String = "127.0.0.1", security: (CertificateAuthority) throws -> EndpointSecurity = { ca in
            .mutualTLS(try ServerTLS(credential: try ca.issueCredential(for: .namespace, namespaceURL: "", hosts: ["127.0.0.1"])))
        }, requestGuard: RequestGuard? = nil, limits: EndpointLimits = EndpointLimits(),
             logger: Logger = Logger(label: "test")) async throws {
            ca = try CertificateAuthority.create()
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let calls = self.calls
            let gate = self.gate
            let security = try security(ca)
            endpoint = try await HTTPEndpoint.start(
                host: host, port: 0, group: group, logger: logger,
                routes: [
                    "GET /v1/whoami": { request in
                        calls.bump()
                        return .json(WhoAmI(peer: request.peer?.description ?? "-"))
                    },
                    "POST /v1/echo": HTTPEndpoint.json(Echo.self) { _, echo in
                        calls.bump()
                        return .json(echo)
                    },
                    "GET /v1/slow": { [gate] _ in
                        for await _ in gate.stream {}
                        calls.bump()
                        return .json(Echo(text: "late"))
                    },
                ],
                security: security, requestGuard: requestGuard, limits: limits)
            let port = endpoint.localAddress!.port!
            let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            if case .insecureLab = security { url = "http://\(authority)" } else { url = "https://\(authority)" }
        }

        func credential(_ identity: PeerIdentity = try! .device("phone.bob@example.com"), validity: TimeInterval = 3600,
                        now: Date = Date()) throws -> Credential {
            try ca.issueCredential(for: identity, namespaceURL: url, validity: validity, now: now)
        }

        func client(_ credential: Credential?, expecting: ServerExpectation = .identity(.namespace)) throws -> PeerClient {
            try PeerClient(baseURL: url, credential: credential, expectedServer: expecting, group: group, timeout: .seconds(10))
        }

        func stop() async {
            await endpoint.close()
            try? await group.shutdownGracefully()
        }
    }

    /// Runs `body`, expecting a PeerClientError whose text contains `fragment`.
    static func expectFailure(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
                              _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("expected a failure containing '\(fragment)'", sourceLocation: sourceLocation)
        } catch let error as PeerClientError {
            #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a good client gets 200 and its identity reaches the handler")
    func goodClient() async throws {
        let lab = try await Lab()
        let client = try lab.client(try lab.credential())
        let who = try await client.call("GET", "/v1/whoami", as: WhoAmI.self)
        let echo = try await client.call("POST", "/v1/echo", json: Echo(text: "hi"), as: Echo.self)
        let byRole = try lab.client(try lab.credential(), expecting: .role(.namespace))
        _ = try await byRole.call("GET", "/v1/whoami", as: WhoAmI.self)
        // A device that made its own key and sent only a CSR.
        let laptop = try PeerIdentity.device("laptop.bob@example.com")
        let (keyPEM, csrPEM) = try KeyMaterial.newKeyAndCSR(for: laptop)
        let own = Credential(identity: laptop, keyPEM: keyPEM, certificatePEM: try lab.ca.issue(csrPEM: csrPEM, as: laptop),
                             caPEM: lab.ca.caPEM, namespaceURL: lab.url)
        let ownWho = try await lab.client(own).call("GET", "/v1/whoami", as: WhoAmI.self)
        await lab.stop()
        #expect(who.peer == "device:phone.bob@example.com")
        #expect(ownWho.peer == "device:laptop.bob@example.com")
        #expect(echo == Echo(text: "hi"))
        #expect(lab.calls.value == 4)
    }

    @Test("the same over IPv6 loopback")
    func ipv6() async throws {
        let lab = try await Lab(host: "::1")
        let who = try await lab.client(try lab.credential()).call("GET", "/v1/whoami", as: WhoAmI.self)
        await lab.stop()
        #expect(who.peer == "device:phone.bob@example.com")
        #expect(lab.calls.value == 1)
    }

    @Test("no client certificate: refused in the handshake, handler never runs")
    func noCertificate() async throws {
        let lab = try await Lab()
        let client = try PeerClient(baseURL: lab.url, tls: try ClientTLS(trustingCA: lab.ca.caPEM),
                                    expectedServer: .identity(.namespace), group: lab.group)
        await Self.expectFailure("failed: the server requires a client certificate and we sent none") {
            _ = try await client.send("GET", "/v1/whoami")
        }
        await lab.stop()
        #expect(lab.calls.value == 0)
    }

    @Test("a certificate from another CA (forged): 'unknown CA', handler never runs")
    func forged() async throws {
        let lab = try await Lab()
        let other = try CertificateAuthority.create()
        var forged = try other.issueCredential(for: try .device("phone.bob@example.com"), namespaceURL: lab.url)
        forged.caPEM = lab.ca.caPEM  // trusts the real server, presents a certificate the real CA never issued
        await Self.expectFailure("the server refused our certificate (unknown CA)") {
            _ = try await lab.client(forged).send("GET", "/v1/whoami")
        }
        await lab.stop()
        #expect(lab.calls.value == 0)
    }

    @Test("an expired certificate: 'certificate expired', handler never runs")
    func expired() async throws {
        let lab = try await Lab()
        let old = try lab.credential(validity: 3600, now: Date() - 7200)
        await Self.expectFailure("the server refused our certificate (certificate expired)") {
            _ = try await lab.client(old).send("GET", "/v1/whoami")
        }
        await lab.stop()
        #expect(lab.calls.value == 0)
    }

    @Test("the same request id twice: the second is a replay (409), the handler ran once")
    func replay() async throws {
        let lab = try await Lab()
        let client = try lab.client(try lab.credential())
        let id = RequestGuard.newRequestID()
        let first = try await client.sendRaw("GET", "/v1/whoami", body: nil, requestID: id)
        let second = try await client.sendRaw("GET", "/v1/whoami", body: nil, requestID: id)
        await lab.stop()
        #expect(first.status == 200)
        #expect(second.status == 409)
        #expect(String(decoding: second.body, as: UTF8.self).contains("replayed request"))
        #expect(lab.calls.value == 1)
    }

    @Test("a stale or future request time: 401, handler never runs")
    func stale() async throws {
        let lab = try await Lab()
        let client = try lab.client(try lab.credential())
        let now = RequestGuard.systemMilliseconds()
        let old = try await client.sendRaw("GET", "/v1/whoami", body: nil, requestTime: now - 60_000)
        let future = try await client.sendRaw("GET", "/v1/whoami", body: nil, requestTime: now + 60_000)
        let nearFuture = try await client.sendRaw("GET", "/v1/whoami", body: nil, requestTime: now + 25_000)
        await lab.stop()
        #expect(old.status == 401)
        #expect(String(decoding: old.body, as: UTF8.self).contains("request expired or clock skew > 30 s"))
        for answer in [future, nearFuture] {
            #expect(answer.status == 401)
            #expect(String(decoding: answer.body, as: UTF8.self).contains("request time in the future: clock skew > 10 s"))
        }
        #expect(lab.calls.value == 0)
    }

    @Test("malformed JSON body: 400 and the typed handler never runs; oversized body: 413")
    func badBodies() async throws {
        let lab = try await Lab()
        let client = try lab.client(try lab.credential())
        let malformed = try await client.sendRaw("POST", "/v1/echo", body: Array("{\"text\": 5}".utf8))
        let notJSON = try await client.sendRaw("POST", "/v1/echo", body: Array("hello".utf8))
        let oversized = try await client.sendRaw("POST", "/v1/echo", body: [UInt8](repeating: 0x20, count: HTTPEndpoint.controlPlaneMaxBodyBytes + 1))
        await lab.stop()
        #expect(malformed.status == 400 && String(decoding: malformed.body, as: UTF8.self).contains("malformed request body: wrong field 'text'"))
        #expect(notJSON.status == 400 && String(decoding: notJSON.body, as: UTF8.self).contains("malformed request body: not JSON"))
        #expect(oversized.status == 413 && String(decoding: oversized.body, as: UTF8.self).contains("larger than 65536 bytes"))
        #expect(lab.calls.value == 0)
    }

    @Test("a server with the wrong identity: the client refuses before sending anything")
    func wrongServer() async throws {
        let lab = try await Lab()
        let credential = try lab.credential()
        await Self.expectFailure("is namespace, not proxy:gw1") {
            _ = try await lab.client(credential, expecting: .identity(try .proxy("gw1"))).send("GET", "/v1/whoami")
        }
        await Self.expectFailure("is namespace, not a device") {
            _ = try await lab.client(credential, expecting: .role(.device)).send("GET", "/v1/whoami")
        }
        await lab.stop()
        #expect(lab.calls.value == 0)
    }

    @Test("a server certificate from another CA: the client refuses it")
    func foreignServer() async throws {
        let lab = try await Lab()
        var credential = try lab.credential()
        credential.caPEM = try CertificateAuthority.create().caPEM
        // Keep the key/cert pair; only what we trust changed.
        await Self.expectFailure("we refused the server's certificate") {
            _ = try await lab.client(credential).send("GET", "/v1/whoami")
        }
        await lab.stop()
        #expect(lab.calls.value == 0)
    }

    @Test("insecure lab: identity from the header; without it 401")
    func insecureLab() async throws {
        let lab = try await Lab(security: { _ in .insecureLab })
        let withIdentity = try PeerClient(baseURL: lab.url, credential: nil, insecureLab: true,
                                          insecureIdentity: try .device("laptop.bob@example.com"), expectedServer: nil, group: lab.group)
        let who = try await withIdentity.call("GET", "/v1/whoami", as: WhoAmI.self)
        let anonymous = try PeerClient(baseURL: lab.url, credential: nil, insecureLab: true, expectedServer: nil, group: lab.group)
        let refused = try await anonymous.send("GET", "/v1/whoami")
        await lab.stop()
        #expect(who.peer == "device:laptop.bob@example.com")
        #expect(refused.status == 401 && String(decoding: refused.body, as: UTF8.self).contains("no client identity"))
        #expect(lab.calls.value == 1)
    }

    @Test("malformed HTTP: 400 with the parser's reason, handler never runs")
    func malformedHTTP() async throws {
        let lab = try await Lab(security: { _ in .insecureLab })
        let port = lab.endpoint.localAddress!.port!
        let answer = await offThread { RawHTTP.exchange(port: port, "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n") }
        await lab.stop()
        #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
        #expect(answer.contains("malformed HTTP request"))
        #expect(lab.calls.value == 0)
    }

    @Test("a server that doesn't answer in time: the request times out while the handler still works")
    func timeout() async throws {
        let lab = try await Lab()
        let client = try PeerClient(baseURL: lab.url, credential: try lab.credential(), expectedServer: .identity(.namespace),
                                    group: lab.group, timeout: .seconds(1))
        await Self.expectFailure("no answer from 127.0.0.1:\(lab.endpoint.localAddress!.port!) within 1 s") {
            _ = try await client.send("GET", "/v1/slow")
        }
        #expect(lab.calls.value == 0)  // the handler is still held: the client gave up on its own
        lab.gate.continuation.finish()
        for _ in 0..<250 where lab.calls.value == 0 { try await Task.sleep(for: .milliseconds(20)) }
        await lab.stop()
        #expect(lab.calls.value == 1)
    }

    @Test("base URLs: IPv6 literals, default ports, path prefixes")
    func baseURLs() throws {
        let ca = try CertificateAuthority.create()
        let credential = try ca.issueCredential(for: .admin, namespaceURL: "")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let v6 = try PeerClient(baseURL: "https://[::1]:7443/tsmp/", credential: credential, expectedServer: .role(.namespace), group: group)
        #expect(v6.host == "::1" && v6.port == 7443 && v6.basePath == "/tsmp" && v6.target == "[::1]:7443")
        let plain = try PeerClient(baseURL: "http://127.0.0.1", credential: nil, insecureLab: true, expectedServer: nil, group: group)
        #expect(plain.port == 80 && plain.basePath == "")
        #expect(throws: PeerClientError.self) {
            _ = try PeerClient(baseURL: "https://127.0.0.1:1?x=1", credential: credential, expectedServer: .role(.namespace), group: group)
        }
        #expect(throws: PeerClientError.self) {
            _ = try PeerClient(baseURL: "https://127.0.0.1:1", credential: credential, expectedServer: nil, group: group)
        }
    }

    @Test("client setup and connection errors are clear")
    func clientErrors() async throws {
        let lab = try await Lab()
        let credential = try lab.credential()
        #expect(throws: PeerClientError.configuration("\(lab.url.replacingOccurrences(of: "https", with: "http")): plain http only with --insecure-lab; use https://")) {
            _ = try PeerClient(baseURL: lab.url.replacingOccurrences(of: "https", with: "http"), credential: credential,
                               expectedServer: nil, group: lab.group)
        }
        #expect(throws: PeerClientError.self) {
            _ = try PeerClient(baseURL: lab.url, credential: nil, expectedServer: .role(.namespace), group: lab.group)
        }
        #expect(throws: PeerClientError.self) {
            _ = try PeerClient(baseURL: "ftp://x", credential: credential, expectedServer: .role(.namespace), group: lab.group)
        }
        let port = lab.endpoint.localAddress!.port!
        await lab.endpoint.close()
        await Self.expectFailure("cannot connect to 127.0.0.1:\(port): connection refused") {
            _ = try await lab.client(credential).send("GET", "/v1/whoami")
        }
        await lab.stop()
    }
}
