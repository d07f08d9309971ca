import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PacketIO

/// What a client requires of the server's certificate after the TLS handshake.
public enum ServerExpectation: Sendable, Equatable {
    /// Exactly this identity (an agent by DID, a proxy by name, the namespace).
    case identity(PeerIdentity)
    /// Any identity with this role (e.g. any proxy of the namespace).
    case role(PeerIdentity.Role)

    func accepts(_ identity: PeerIdentity) -> Bool {
        switch self {
        case .identity(let expected): return identity == expected
        case .role(let role): return identity.role == role
        }
    }
}

/// An HTTP(S) client for control links (namespace, proxy device API, agents): one connection
/// per request, mutual TLS with the credential's certificate, the server checked against
/// the namespace CA and then against ``ServerExpectation`` before any request byte is sent.
/// Plain `http://` only when constructed with `insecureLab: true`; then the identity travels
/// in the `TSMP-Insecure-Identity` header.
///
/// Every request carries `TSMP-Request-ID` (128 random bits, hex) and `TSMP-Request-Time`
/// (ms since the epoch) for the server's ``RequestGuard``.
public struct PeerClient: Sendable {
    public static let connectTimeoutSeconds: Int64 = 5

    public let host: String
    public let port: Int
    /// Path prefix from the base URL ("" or e.g. "/tsmp").
    public let basePath: String
    let tls: ClientTLS?
    let identityHeader: PeerIdentity?
    let expectedServer: ServerExpectation?
    let group: any EventLoopGroup
    public let timeout: TimeAmount
    /// The local address to connect from (nil: the kernel's choice). The server attributes
    /// what it observes to the address a request comes from; tests speak as several devices
    /// from 127.0.0.2, 127.0.0.3, ... this way.
    public var sourceAddress: SocketAddress?

    /// - Parameters:
    ///   - baseURL: `https://HOST:PORT[/prefix]`, or `http://...` with `insecureLab`.
    ///   - credential: ours; required for https.
    ///   - insecureIdentity: the identity to claim on plain http when there is no credential.
    ///   - expectedServer: required for https: whom we mean to talk to.
    ///   - timeout: the whole request, connect included (connect alone: 5 s).
    public init(baseURL: String, credential: Credential?, insecureLab: Bool = false, insecureIdentity: PeerIdentity? = nil,
                expectedServer: ServerExpectation?, group: any EventLoopGroup, timeout: TimeAmount = .seconds(30)) throws {
        let tls: ClientTLS?
        let url = try Self.parse(baseURL)
        if url.https {
            guard let credential else {
                throw PeerClientError.configuration("\(baseURL): https needs a credential (--credentials FILE)")
            }
            tls = try ClientTLS(credential: credential)
        } else {
            tls = nil
        }
        try self.init(url: url, baseURL: baseURL, tls: tls, insecureLab: insecureLab,
                      identityHeader: credential?.identity ?? insecureIdentity, expectedServer: expectedServer,
                      group: group, timeout: timeout)
    }

    /// A client with an explicit TLS setup (e.g. ``ClientTLS/init(trustingCA:)``, which
    /// presents no certificate: every tsmp server refuses it; for tests and diagnostics).
    public init(baseURL: String, tls: ClientTLS?, insecureLab: Bool = false, insecureIdentity: PeerIdentity? = nil,
                expectedServer: ServerExpectation?, group: any EventLoopGroup, timeout: TimeAmount = .seconds(30)) throws {
        let url = try Self.parse(baseURL)
        if url.https && tls == nil {
            throw PeerClientError.configuration("\(baseURL): https needs a TLS setup")
        }
        try self.init(url: url, baseURL: baseURL, tls: url.https ? tls : nil, insecureLab: insecureLab,
                      identityHeader: insecureIdentity, expectedServer: expectedServer, group: group, timeout: timeout)
    }

    private init(url: ParsedURL, baseURL: String, tls: ClientTLS?, insecureLab: Bool, identityHeader: PeerIdentity?,
                 expectedServer: ServerExpectation?, group: any EventLoopGroup, timeout: TimeAmount) throws {
        if !url.https && !insecureLab {
            throw PeerClientError.configuration("\(baseURL): plain http only with --insecure-lab; use https://")
        }
        if url.https && expectedServer == nil {
            throw PeerClientError.configuration("\(baseURL): say which server is expected (identity or role)")
        }
        self.host = url.host
        self.port = url.port
        self.basePath = url.path
        self.tls = tls
        self.identityHeader = url.https ? nil : identityHeader
        self.expectedServer = expectedServer
        self.group = group
        self.timeout = timeout
    }

    /// HOST:PORT as used in messages.
    public var target: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Sends a request with `body` as JSON (no body when nil); answers status and body as they came.
    public func send(_ method: String, _ path: String, query: [String: String] = [:],
                     json body: (some Encodable)?) async throws -> (status: Int, body: [UInt8]) {
        var bytes: [UInt8]?
        if let body {
            do {
                bytes = Array(try JSONEncoder().encode(body))
            } catch {
                throw PeerClientError.configuration("cannot encode the request body: \(error)")
            }
        }
        return try await sendRaw(method, path, query: query, body: bytes)
    }

    /// Sends a request without a body.
    public func send(_ method: String, _ path: String, query: [String: String] = [:]) async throws -> (status: Int, body: [UInt8]) {
        try await sendRaw(method, path, query: query, body: nil)
    }

    /// Sends, then decodes `T` from a 2xx answer; any other status throws
    /// ``PeerClientError/refused(status:reason:)`` with the server's `{"error": ...}` text.
    public func call<T: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                   json body: (some Encodable)?, as type: T.Type) async throws -> T {
        let (status, answer) = try await send(method, path, query: query, json: body)
        return try Self.decode(status: status, body: answer, as: T.self, target: target)
    }

    /// Same, without a request body.
    public func call<T: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                   as type: T.Type) async throws -> T {
        let (status, answer) = try await send(method, path, query: query)
        return try Self.decode(status: status, body: answer, as: T.self, target: target)
    }

    static func decode<T: Decodable>(status: Int, body: [UInt8], as type: T.Type, target: String) throws -> T {
        guard (200..<300).contains(status) else {
            let reason = (try? JSONDecoder().decode(ErrorBody.self, from: Data(body)))?.error
                ?? String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw PeerClientError.refused(status: status, reason: reason.isEmpty ? "(no reason given)" : reason)
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw PeerClientError.protocolError("\(target) answered \(status) with a body that is not the expected JSON (\(error))")
        }
    }

    /// The transport: any body bytes, and the request id/time overridable (tests use this to
    /// replay a request or send a stale one).
    public func sendRaw(_ method: String, _ path: String, query: [String: String] = [:], body: [UInt8]?,
                        requestID: String? = nil, requestTime: Int64? = nil) async throws -> (status: Int, body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: target)
        headers.add(name: "User-Agent", value: "tsmp")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Connection", value: "close")
        headers.add(name: RequestGuard.requestIDHeader, value: requestID ?? RequestGuard.newRequestID())
        headers.add(name: RequestGuard.requestTimeHeader, value: String(requestTime ?? RequestGuard.systemMilliseconds()))
        if let identityHeader { headers.add(name: HTTPEndpoint.insecureIdentityHeader, value: identityHeader.description) }
        if body != nil {
            headers.add(name: "Content-Type", value: "application/json")
        }
        headers.add(name: "Content-Length", value: String(body?.count ?? 0))
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method),
                                   uri: basePath + path + Self.encode(query), headers: headers)

        let loop = group.next()
        let promise = loop.makePromise(of: (status: Int, body: [UInt8]).self)
        let exchange = Exchange(head: head, body: body ?? [], promise: promise, tls: tls != nil,
                                expectedServer: expectedServer, target: target)
        let tls = self.tls
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(Self.connectTimeoutSeconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: nil))
                    }
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(exchange)
                }
            }
        let timeout = self.timeout
        let target = self.target
        let bound = sourceAddress.map { bootstrap.bind(to: $0) } ?? bootstrap
        let connect = Self.preferredAddress(host, port).map { bound.connect(to: $0) } ?? bound.connect(host: host, port: port)
        connect.whenFailure { error in
            promise.fail(PeerClientError.classify(error, target: target, tls: false, handshakeDone: false))
        }
        let deadline = loop.scheduleTask(in: timeout) {
            promise.fail(PeerClientError.timeout("no answer from \(target) within \(timeout.nanoseconds / 1_000_000_000) s"))
        }
        // Whatever happened, the connection goes (without waiting: a TLS close waits for the
        // server's close_notify, which a server still working on our request may not send).
        promise.futureResult.whenComplete { _ in
            deadline.cancel()
            connect.whenSuccess { $0.close(promise: nil) }
        }
        return try await promise.futureResult.get()
    }

    private struct ErrorBody: Decodable { let error: String }

    /// For a host name: its first IPv4 address if it has one, else its first IPv6 address
    /// (`Syscall.preferringIPv4`: requests must come from the family of the caller's flows).
    /// Nil for an address literal, or a name the resolver does not know (the connection
    /// then fails with the resolver's error as before).
    static func preferredAddress(_ host: String, _ port: Int,
                                 resolve: (String, UInt16) throws -> [IPSocketAddress] = { try Syscall.resolve($0, port: $1) }) -> SocketAddress? {
        guard !HostPort.isIPv4(host), !HostPort.isIPv6(host), let p = UInt16(exactly: port),
              let resolved = try? resolve(host, p), let first = Syscall.preferringIPv4(resolved).first else { return nil }
        return try? SocketAddress(ipAddress: first.literal, port: port)
    }

    struct ParsedURL {
        var https: Bool
        var host: String
        var port: Int
        var path: String
    }

    static func parse(_ text: String) throws -> ParsedURL {
        guard let c = URLComponents(string: text), let scheme = c.scheme?.lowercased(), scheme == "https" || scheme == "http",
              var host = c.host, !host.isEmpty else {
            throw PeerClientError.configuration("\(text): not an http(s)://HOST:PORT URL")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard c.query == nil, c.fragment == nil, c.user == nil else {
            throw PeerClientError.configuration("\(text): a base URL has no query, fragment or user")
        }
        let path = c.path.hasSuffix("/") ? String(c.path.dropLast()) : c.path
        return ParsedURL(https: scheme == "https", host: host, port: c.port ?? (scheme == "https" ? 443 : 80), path: path)
    }

    static func encode(_ query: [String: String]) -> String {
        guard !query.isEmpty else { return "" }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~@:")
        let pairs = query.sorted { $0.key < $1.key }.map { key, value in
            (key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key) + "="
                + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)
        }
        return "?" + pairs.joined(separator: "&")
    }
}

extension ClientTLS {
    /// A client that verifies servers against `caPEM` but presents no certificate of its
    /// own. Every tsmp server refuses it; for tests and diagnostics.
    public init(trustingCA caPEM: String) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        do {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        } catch {
            throw PKIError("CA certificate: not PEM (\(error))")
        }
        self.init(identity: nil, context: try TLSSetup.context(configuration, what: "client TLS without a certificate"))
    }
}
