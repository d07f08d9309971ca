import Logging
import NIOCore
import NIOTLS

/// One connection's deadlines (``EndpointLimits``): one phase at a time, one timer, set when
/// the phase begins and never pushed back by bytes arriving, so a client sending a byte a
/// second is closed when its phase's time is up, like one sending nothing.
///
/// It sits between TLS and the HTTP decoder, where it sees the connection become ready (TLS
/// handshake done) and the first byte of each request; the request handler tells it when a
/// head and a whole request have arrived and when the answer is written. A head or body not
/// complete in time is answered 408 (RFC 9110 §15.5.9) and the connection closed; a
/// handshake or an idle connection is just closed.
final class ConnectionDeadlines: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase: Equatable {
        /// TLS handshake in progress.
        case handshaking
        /// Waiting for (the rest of) a request's head.
        case readingHead
        /// The head is in; waiting for the rest of the body.
        case readingBody
        /// The request is with its handler; `bytesWaiting`: the next one has begun arriving.
        case answering(bytesWaiting: Bool)
        /// Between requests.
        case idle
        /// A deadline passed; the connection is closing.
        case expired
    }

    private let limits: EndpointLimits
    private let tls: Bool
    private let logger: Logger
    private let refusalLog: RateLimitedLog
    private(set) var phase: Phase
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(limits: EndpointLimits, tls: Bool, logger: Logger, refusalLog: RateLimitedLog) {
        self.limits = limits
        self.tls = tls
        self.logger = logger
        self.refusalLog = refusalLog
        phase = tls ? .handshaking : .readingHead
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, phase == .handshaking {
            enter(.readingHead)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .idle: enter(.readingHead)
        case .answering: phase = .answering(bytesWaiting: true)
        default: break
        }
        context.fireChannelRead(data)
    }

    // MARK: - From the request handler

    /// A request's head has been decoded.
    func headReceived() { if phase != .expired { enter(.readingBody) } }

    /// A whole request has arrived; its handler runs without a deadline.
    func requestReceived() { if phase != .expired { enter(.answering(bytesWaiting: false)) } }

    /// The answer is written and the connection stays open for the next request.
    func responseSent() {
        guard case .answering(let bytesWaiting) = phase else { return }
        enter(bytesWaiting ? .readingHead : .idle)
    }

    // MARK: - Timers

    private var armed = false

    private func start() {
        guard !armed else { return }
        armed = true
        enter(phase)
    }

    private func enter(_ next: Phase) {
        phase = next
        timer?.cancel()
        timer = nil
        guard armed, let context, let timeout = timeout(of: next) else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) { bound.value.expire() }
    }

    private func timeout(of phase: Phase) -> TimeAmount? {
        switch phase {
        case .handshaking: limits.handshakeTimeout
        case .readingHead: limits.headerTimeout
        case .readingBody: limits.bodyTimeout
        case .idle: limits.idleTimeout
        case .answering, .expired: nil
        }
    }

    private func expire() {
        guard let context else { return }
        let was = phase
        phase = .expired
        timer = nil
        let reason: String? = switch was {
        case .readingHead: "request head not complete within \(Self.seconds(limits.headerTimeout))"
        case .readingBody: "request body not complete within \(Self.seconds(limits.bodyTimeout)) of its head"
        default: nil
        }
        if was != .idle {
            let address = context.remoteAddress?.ipAddress ?? "-"
            if let suppressed = refusalLog.admit("deadline \(address)") {
                logger.info("connection closed at its deadline", metadata: [
                    "remote": "\(address)", "phase": "\(was == .handshaking ? "TLS handshake" : reason ?? "\(was)")",
                    "suppressed": "\(suppressed)"])
            }
        }
        guard let reason else {
            context.close(promise: nil)
            return
        }
        // 408 with the reason, written below the HTTP encoder (whose request is unfinished),
        // then close; a client that does not read gets closed a second later anyway.
        let body = HTTPEndpoint.Response.error(.requestTimeout, reason).body
        var buffer = context.channel.allocator.buffer(capacity: 128 + body.count)
        buffer.writeString("HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
        buffer.writeBytes(body)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    private static func seconds(_ t: TimeAmount) -> String {
        t.nanoseconds % 1_000_000_000 == 0 ? "\(t.nanoseconds / 1_000_000_000) s" : "\(t.nanoseconds / 1_000_000) ms"
    }
}
