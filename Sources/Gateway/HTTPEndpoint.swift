import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server (SwiftNIO) for the proxy's local endpoints: the control API that
/// `tsmp flows` and `tsmp migrate` talk to, and the Prometheus metrics page. Requests are
/// routed by method and path to async handlers; bodies are capped (`maxBodyBytes`) and
/// anything malformed or too large is refused with a 4xx and a one-line reason.
public final class HTTPEndpoint: Sendable {
    public struct Request: Sendable {
        public var method: HTTPMethod
        public var path: String
        public var query: [String: String]
        public var body: [UInt8]
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
            return Response(status: status, text: "{\"error\":\"\(escaped)\"}\n")
        }
    }
    public typealias Handler = @Sendable (Request) async -> Response

    private let channel: any Channel
    public let localAddress: SocketAddress?

    public static let maxBodyBytes = 1 << 20

    /// Binds and starts serving; throws (with the address in the message) when it can't bind.
    public static func start(host: String, port: Int, group: any EventLoopGroup, logger: Logger,
                             routes: [String: Handler]) async throws -> HTTPEndpoint {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(RequestHandler(routes: routes, logger: logger))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return HTTPEndpoint(channel: channel)
    }

    private init(channel: any Channel) {
        self.channel = channel
        self.localAddress = channel.localAddress
    }

    public func close() async {
        try? await channel.close()
    }
}

/// One connection's requests, one at a time (no pipelining needed by our clients).
private final class RequestHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let routes: [String: HTTPEndpoint.Handler]
    let logger: Logger
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    var tooLarge = false

    init(routes: [String: HTTPEndpoint.Handler], logger: Logger) {
        self.routes = routes
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = false
        case .body(var buf):
            if body.count + buf.readableBytes > HTTPEndpoint.maxBodyBytes {
                tooLarge = true
            } else {
                body += buf.readBytes(length: buf.readableBytes) ?? []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let keepAlive = head.isKeepAlive
            if tooLarge {
                respond(context: context, .error(.payloadTooLarge, "request body larger than \(HTTPEndpoint.maxBodyBytes) bytes"), keepAlive: false)
                return
            }
            let (path, query) = Self.split(head.uri)
            let key = "\(head.method.rawValue) \(path)"
            guard let handler = routes[key] else {
                let known = routes.keys.contains { $0.hasSuffix(" \(path)") }
                respond(context: context, known ? .error(.methodNotAllowed, "\(head.method.rawValue) not allowed on \(path)")
                                                : .error(.notFound, "no such endpoint: \(path)"), keepAlive: keepAlive)
                return
            }
            let request = HTTPEndpoint.Request(method: head.method, path: path, query: query, body: body)
            let loop = context.eventLoop
            let promise = loop.makePromise(of: HTTPEndpoint.Response.self)
            promise.completeWithTask { await handler(request) }
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            promise.futureResult.whenSuccess { response in
                let (handler, context) = bound.value
                handler.respond(context: context, response, keepAlive: keepAlive)
            }
        }
    }

    private func respond(context: ChannelHandlerContext, _ response: HTTPEndpoint.Response, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }

    static func split(_ uri: String) -> (String, [String: String]) {
        guard let q = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: q)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            query[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return (String(uri[..<q]), query)
    }
}
