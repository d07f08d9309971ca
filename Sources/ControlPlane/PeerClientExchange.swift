import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// One request and its answer on a fresh connection. Over TLS the request is written only
/// after the handshake completed and the server's certificate names the expected identity,
/// so nothing reaches a server we didn't mean to talk to.
final class Exchange: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let head: HTTPRequestHead
    let body: [UInt8]
    let promise: EventLoopPromise<(status: Int, body: [UInt8])>
    let tls: Bool
    let expectedServer: ServerExpectation?
    let target: String
    var handshakeDone = false
    var status: Int?
    var answer: [UInt8] = []
    /// Answers larger than this are refused (control-plane answers are small).
    static let maxAnswerBytes = 16 << 20

    init(head: HTTPRequestHead, body: [UInt8], promise: EventLoopPromise<(status: Int, body: [UInt8])>, tls: Bool,
         expectedServer: ServerExpectation?, target: String) {
        self.head = head; self.body = body; self.promise = promise; self.tls = tls
        self.expectedServer = expectedServer; self.target = target
    }

    func channelActive(context: ChannelHandlerContext) {
        if !tls { sendRequest(context: context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            handshakeDone = true
            if let refusal = checkServer(context: context) {
                fail(context: context, refusal)
                return
            }
            sendRequest(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func checkServer(context: ChannelHandlerContext) -> PeerClientError? {
        guard let expectedServer else { return nil }
        let identity: PeerIdentity
        do {
            let handler = try context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            guard let certificate = handler.peerCertificate else {
                return .wrongServer("\(target) presented no certificate")
            }
            identity = try PeerIdentity(certificateDER: try certificate.toDERBytes())
        } catch {
            return .wrongServer("\(target): its certificate names no tsmp identity (\(error))")
        }
        guard expectedServer.accepts(identity) else {
            let wanted: String
            switch expectedServer {
            case .identity(let i): wanted = "\(i)"
            case .role(let r): wanted = "a \(r.rawValue)"
            }
            return .wrongServer("\(target) is \(identity), not \(wanted): refusing to send it our request")
        }
        return nil
    }

    private func sendRequest(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !body.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            status = Int(h.status.code)
            answer = []
        case .body(var buffer):
            guard answer.count + buffer.readableBytes <= Self.maxAnswerBytes else {
                fail(context: context, .protocolError("\(target) answered with more than \(Self.maxAnswerBytes) bytes"))
                return
            }
            answer += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            if let status {
                promise.succeed((status, answer))
            }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, PeerClientError.classify(error, target: target, tls: tls, handshakeDone: handshakeDone))
    }

    func channelInactive(context: ChannelHandlerContext) {
        let message = tls && !handshakeDone
            ? PeerClientError.tls("TLS handshake with \(target) failed: the server closed the connection")
            : PeerClientError.protocolError("\(target) closed the connection before answering")
        promise.fail(message)
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, _ error: PeerClientError) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
