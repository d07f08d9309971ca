import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// How an endpoint knows who is speaking.
public enum EndpointSecurity: Sendable {
    /// Plain HTTP, no identity: the proxy's loopback control endpoint and the metrics page.
    case localPlain
    /// TLS with a client certificate required and verified against the namespace CA; the
    /// peer's identity is read from its certificate. Every request passes the ``RequestGuard``.
    case mutualTLS(ServerTLS)
    /// Plain HTTP for test labs only (`--insecure-lab`): the identity is whatever the
    /// `TSMP-Insecure-Identity` header says. Every request passes the ``RequestGuard``.
    case insecureLab

    var isSecured: Bool {
        if case .localPlain = self { return false }
        return true
    }
}

/// A small HTTP/1.1 server (SwiftNIO) for tsmp's endpoints: the proxy's local control API,
/// the metrics page, and the authenticated control links (namespace, proxy device API,
/// agent). Requests are routed by method and path to async handlers; bodies are capped and
/// anything malformed or too large is refused with a 4xx and a one-line reason. On secured
/// endpoints (``EndpointSecurity``) a handler only ever sees requests with an identity that
/// passed the ``RequestGuard`` (fresh, not replayed, within its peer's rate); the route is
/// looked up first, so an unknown path is a 404 that costs the guard nothing.
///
/// Limits on every endpoint (``EndpointLimits``, issue 10): a TLS handshake, a request head
/// and a request body each have an absolute deadline (10 s by default; 408 or close), an
/// idle connection is closed after 60 s, and connections (handshakes in progress included)
/// are capped per remote address (64) and overall (4,096). Refused handshakes, refused
/// connections and deadline closes are logged at most once per address per 10 s, with a
/// count of the lines left out.
public final class HTTPEndpoint: Sendable {
    public struct Request: Sendable {
        public var method: HTTPMethod
        public var path: String
        public var query: [String: String]
        public var body: [UInt8]
        /// Who sent it: nil on `.localPlain` endpoints, always set on secured ones.
        public var peer: PeerIdentity?
        public var headers: HTTPHeaders
        public var remoteAddress: SocketAddress?

        public init(method: HTTPMethod, path: String, query: [String: String] = [:], body: [UInt8] = [],
                    peer: PeerIdentity? = nil, headers: HTTPHeaders = HTTPHeaders(), remoteAddress: SocketAddress? = nil) {
            self.method = method; self.path = path; self.query = query; self.body = body
            self.peer = peer; self.headers = headers; self.remoteAddress = remoteAddress
        }

        /// The body decoded as JSON, or a 400 response naming what is wrong with it.
        public func decode<T: Decodable & SendableMetatype>(_ type: T.Type) -> Result<T, ResponseError> {
            do {
                return .success(try JSONDecoder().decode(T.self, from: Data(body)))
            } catch {
                return .failure(ResponseError(.error(.badRequest, "malformed request body: \(Self.describe(error))")))
            }
        }

        static func describe(_ error: any Error) -> String {
            switch error {
            case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
            case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
                return "wrong field '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
            case DecodingError.dataCorrupted(let c) where !c.codingPath.isEmpty:
                return "wrong field '\(c.codingPath.map(\.stringValue).joined(separator: "."))': \(c.debugDescription)"
            default: return "not JSON"
            }
        }
    }
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: [UInt8]
        public init(status: HTTPResponseStatus = .ok, contentType: String = "application/json", body: [UInt8]) {
            self.status = status; self.contentType = contentType; self.body = body
        }
        public init(status: HTTPResponseStatus = .ok, contentType: String = "application/json", text: String) {
            self.init(status: status, contentType: contentType, body: Array(text.utf8))
        }
        /// `{"error": reason}` with the given status.
        public static func error(_ status: HTTPResponseStatus, _ reason: String) -> Response {
            let escaped = reason.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return Response(status: status, text: "{\"error\":\"\(escaped)\"}\n")
        }
        /// `value` as JSON (sorted keys), or a 500 when it can't be encoded.
        public static func json(_ value: some Encodable, status: HTTPResponseStatus = .ok) -> Response {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            do {
                return Response(status: status, body: Array(try encoder.encode(value)) + [0x0A])
            } catch {
                return .error(.internalServerError, "cannot encode the answer: \(error)")
            }
        }
    }
    /// A response carried as an error (e.g. from ``Request/decode(_:)``).
    public struct ResponseError: Error {
        public let response: Response
        public init(_ response: Response) { self.response = response }
    }
    public typealias Handler = @Sendable (Request) async -> Response

    /// A route whose body is JSON of type `T`: a body that doesn't decode is answered with
    /// 400 "malformed request body: ..." and `handler` does not run.
    public static func json<T: Decodable & SendableMetatype>(_ type: T.Type,
                                                           _ handler: @escaping @Sendable (Request, T) async -> Response) -> Handler {
        { request in
            switch request.decode(T.self) {
            case .success(let value): return await handler(request, value)
            case .failure(let error): return error.response
            }
        }
    }

    private let channel: any Channel
    private let admission: ConnectionAdmission
    public let localAddress: SocketAddress?

    /// Body limit of plain local endpoints.
    public static let maxBodyBytes = 1 << 20
    /// Body limit of secured (control-plane) endpoints.
    public static let controlPlaneMaxBodyBytes = 64 << 10
    /// A connection with no request in progress and nothing read for this long is closed
    /// (the default of ``EndpointLimits/idleTimeout``).
    public static let idleTimeout = TimeAmount.seconds(60)
    /// The header a client uses to name itself on `.insecureLab` endpoints.
    public static let insecureIdentityHeader = "TSMP-Insecure-Identity"

    /// Binds and starts serving; throws (with the address in the message) when it can't bind.
    /// - Parameters:
    ///   - maxBodyBytes: larger bodies get 413; default ``maxBodyBytes`` for `.localPlain`,
    ///     ``controlPlaneMaxBodyBytes`` for secured endpoints.
    ///   - requestGuard: the freshness/replay/rate checks of secured endpoints (a new one with
    ///     the system clock and default limits by default); unused on `.localPlain`.
    ///   - limits: deadlines and connection caps (``EndpointLimits``).
    public static func start(host: String, port: Int, group: any EventLoopGroup, logger: Logger,
                             routes: [String: Handler], security: EndpointSecurity = .localPlain,
                             maxBodyBytes: Int? = nil, requestGuard: RequestGuard? = nil,
                             limits: EndpointLimits = EndpointLimits()) async throws -> HTTPEndpoint {
        let refusalLog = RateLimitedLog()
        let configuration = RequestHandler.Configuration(
            routes: routes, logger: logger, security: security,
            maxBodyBytes: maxBodyBytes ?? (security.isSecured ? controlPlaneMaxBodyBytes : Self.maxBodyBytes),
            requestGuard: security.isSecured ? (requestGuard ?? RequestGuard()) : nil, refusalLog: refusalLog)
        let admission = ConnectionAdmission(limits: limits)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let address = channel.remoteAddress?.ipAddress ?? "-"
                    switch admission.admit(address) {
                    case .refused(let reason):
                        if let suppressed = refusalLog.admit("connection \(address)") {
                            logger.notice("connection refused", metadata: [
                                "remote": "\(address)", "reason": "\(reason)", "suppressed": "\(suppressed)"])
                        }
                        try sync.addHandler(RefuseConnection())
                        return
                    case .admitted:
                        channel.closeFuture.whenComplete { _ in admission.release(address) }
                    }
                    var tls = false
                    if case .mutualTLS(let server) = security {
                        try sync.addHandler(NIOSSLServerHandler(context: server.context))
                        tls = true
                    }
                    let deadlines = ConnectionDeadlines(limits: limits, tls: tls, logger: logger, refusalLog: refusalLog)
                    try sync.addHandler(deadlines)
                    try sync.configureHTTPServerPipeline(withErrorHandling: false)
                    try sync.addHandler(RequestHandler(configuration, deadlines: deadlines))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw BindFailure(description: "\(host.contains(":") ? "[\(host)]" : host):\(port): \(BindFailure.reason(error))")
        }
        return HTTPEndpoint(channel: channel, admission: admission)
    }

    /// A Unix socket file this endpoint made, removed when it closes.
    private let socketFile: String?

    init(channel: any Channel, admission: ConnectionAdmission, socketFile: String? = nil) {
        self.channel = channel
        self.admission = admission
        self.localAddress = channel.localAddress
        self.socketFile = socketFile
    }

    /// Connections open now (TLS handshakes in progress included), from `address` (an IP
    /// address as text) or overall.
    public func openConnections(from address: String? = nil) -> Int {
        admission.open(from: address)
    }

    /// Why an endpoint could not listen, in words (the address and the system's reason, not
    /// the library's call).
    public struct BindFailure: Error, CustomStringConvertible {
        public let description: String

        static func reason(_ error: any Error) -> String {
            if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
            if case let SocketAddressError.unknown(host, port) = error { return "\(host):\(port) is not an address of this host" }
            return "\(error)"
        }
    }

    public func close() async {
        try? await channel.close()
        if let socketFile { unlink(socketFile) }
    }
}
