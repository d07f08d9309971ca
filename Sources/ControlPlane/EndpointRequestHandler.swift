import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// One connection's requests, one at a time (pipelined ones wait their turn): collect the
/// body up to the limit, establish who is speaking, find the route (an unknown one is a 404
/// that costs the request guard nothing), run the request guard on secured endpoints, then
/// the route's handler. It tells the connection's ``ConnectionDeadlines`` where each
/// request is.
final class RequestHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Configuration: Sendable {
        let routes: [String: HTTPEndpoint.Handler]
        let logger: Logger
        let security: EndpointSecurity
        let maxBodyBytes: Int
        let requestGuard: RequestGuard?
        /// Rate-limits the lines about refused handshakes and requests (shared by the
        /// endpoint's connections).
        let refusalLog: RateLimitedLog
    }

    let configuration: Configuration
    let deadlines: ConnectionDeadlines
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    var tooLarge = false
    /// A route handler is working on this connection's request; its answer comes next.
    var handlerRunning = false
    /// The TLS peer's identity, read once per connection (nil: not read yet).
    var tlsPeer: Result<PeerIdentity, PKIError>?

    init(_ configuration: Configuration, deadlines: ConnectionDeadlines) {
        self.configuration = configuration
        self.deadlines = deadlines
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = false
            deadlines.headReceived()
        case .body(var buf):
            if tooLarge || body.count + buf.readableBytes > configuration.maxBodyBytes {
                tooLarge = true
                body = []
            } else {
                body += buf.readBytes(length: buf.readableBytes) ?? []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            deadlines.requestReceived()
            let keepAlive = head.isKeepAlive
            if tooLarge {
                respond(context: context, .error(.payloadTooLarge, "request body larger than \(configuration.maxBodyBytes) bytes"), keepAlive: false)
                return
            }
            let peer: PeerIdentity?
            switch identify(context: context, head: head) {
            case .success(let p): peer = p
            case .failure(let refusal):
                respond(context: context, .error(refusal.status, refusal.reason), keepAlive: false)
                return
            }
            let (path, query) = Self.split(head.uri)
            let key = "\(head.method.rawValue) \(path)"
            guard let handler = configuration.routes[key] else {
                let known = configuration.routes.keys.contains { $0.hasSuffix(" \(path)") }
                respond(context: context, known ? .error(.methodNotAllowed, "\(head.method.rawValue) not allowed on \(path)")
                                                : .error(.notFound, "no such endpoint: \(path)"), keepAlive: keepAlive)
                return
            }
            if let requestGuard = configuration.requestGuard,
               let refusal = requestGuard.check(peer: peer, requestID: head.headers.first(name: RequestGuard.requestIDHeader),
                                                requestTime: head.headers.first(name: RequestGuard.requestTimeHeader)) {
                // One line per peer per 10 s: a flood must not become a flood of log lines.
                if let suppressed = configuration.refusalLog.admit("request \(peer.map(\.description) ?? "-")") {
                    configuration.logger.notice("request refused", metadata: [
                        "peer": "\(peer.map(\.description) ?? "-")", "remote": "\(context.remoteAddress.map { "\($0)" } ?? "-")",
                        "path": "\(head.uri)", "status": "\(refusal.status.code)", "reason": "\(refusal.reason)",
                        "suppressed": "\(suppressed)"])
                }
                respond(context: context, .error(refusal.status, refusal.reason), keepAlive: keepAlive)
                return
            }
            let request = HTTPEndpoint.Request(method: head.method, path: path, query: query, body: body, peer: peer,
                                               headers: head.headers, remoteAddress: context.remoteAddress)
            body = []
            handlerRunning = true
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

    /// Who sent this request, by the endpoint's security mode.
    private func identify(context: ChannelHandlerContext, head: HTTPRequestHead) -> Result<PeerIdentity?, RequestGuard.Refusal> {
        switch configuration.security {
        case .localPlain:
            return .success(nil)
        case .insecureLab:
            guard let text = head.headers.first(name: HTTPEndpoint.insecureIdentityHeader) else {
                return .failure(.init(status: .unauthorized, reason: "no client identity (\(HTTPEndpoint.insecureIdentityHeader) header missing)"))
            }
            do {
                return .success(try PeerIdentity(parsing: text))
            } catch {
                return .failure(.init(status: .unauthorized, reason: "\(HTTPEndpoint.insecureIdentityHeader): \(error)"))
            }
        case .mutualTLS:
            if tlsPeer == nil { tlsPeer = Self.readTLSPeer(context: context) }
            switch tlsPeer! {
            case .success(let identity): return .success(identity)
            case .failure(let error): return .failure(.init(status: .unauthorized, reason: "client certificate: \(error.description)"))
            }
        }
    }

    private static func readTLSPeer(context: ChannelHandlerContext) -> Result<PeerIdentity, PKIError> {
        do {
            let tls = try context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
            guard let certificate = tls.peerCertificate else { return .failure(PKIError("no client identity (no certificate)")) }
            return .success(try PeerIdentity(certificateDER: try certificate.toDERBytes()))
        } catch let error as PKIError {
            return .failure(error)
        } catch {
            return .failure(PKIError("unreadable (\(error))"))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, !handlerRunning {
            // Malformed HTTP: answer 400 with the parser's reason, then close (the decoder
            // can't resynchronise on this connection).
            respond(context: context, .error(.badRequest, "malformed HTTP request: \(error)"), keepAlive: false)
            return
        }
        // TLS failures (refused client certificates) and resets: nothing to answer. Refused
        // handshakes are worth a line for whoever runs the server, at most one per address
        // per 10 s (a client retrying in a loop made hundreds a second).
        let remote = context.remoteAddress.map { "\($0)" } ?? "-"
        if let tlsError = error as? NIOSSLError, case .handshakeFailed = tlsError {
            let address = context.remoteAddress?.ipAddress ?? "-"
            if let suppressed = configuration.refusalLog.admit("tls \(address)") {
                configuration.logger.info("TLS handshake refused", metadata: [
                    "remote": "\(remote)", "error": "\(tlsError)", "suppressed": "\(suppressed)"])
            }
        } else {
            configuration.logger.debug("connection error", metadata: ["remote": "\(remote)", "error": "\(error)"])
        }
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext, _ response: HTTPEndpoint.Response, keepAlive: Bool) {
        handlerRunning = false
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive {
            deadlines.responseSent()
        } else {
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
