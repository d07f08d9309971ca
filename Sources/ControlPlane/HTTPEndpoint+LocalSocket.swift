#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix

/// The credentials of the process at the other end of a Unix socket (`SO_PEERCRED`,
/// socket(7)); the layout of glibc's `struct ucred` (pid_t, uid_t, gid_t: three 32-bit
/// fields), checked against the kernel's answer for our own process in the tests.
public struct PeerProcessCredentials: Sendable, Equatable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public init(pid: Int32, uid: UInt32, gid: UInt32) { self.pid = pid; self.uid = uid; self.gid = gid }
}

extension HTTPEndpoint {
    /// Why a local socket could not be served.
    public struct LocalSocketError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Serves `routes` on a Unix-domain socket at `path` that only `allowedUIDs` may use
    /// (issue "Control-plane security", finding 2: a loopback TCP port is open to every local
    /// user). Two locks: the socket file is mode 0600 (connect(2) needs write permission on
    /// it, so other users get EACCES), and each connection's peer is checked with `SO_PEERCRED`
    /// (a file mode loosened by hand still lets nobody else in: they get a 403 with the reason
    /// and the connection closes before any request is read).
    ///
    /// A socket file left by a proxy that died is replaced; one a live process answers on is
    /// refused (another proxy uses it). The file is removed by ``close()``.
    /// The header and body deadlines and the idle close of ``EndpointLimits`` apply as on every
    /// endpoint; the connection caps count every local peer as one address.
    public static func startLocal(path: String, allowedUIDs: Set<UInt32>, group: any EventLoopGroup, logger: Logger,
                                  routes: [String: Handler], limits: EndpointLimits = EndpointLimits()) async throws -> HTTPEndpoint {
        try removeStaleSocket(path)
        let refusalLog = RateLimitedLog()
        let configuration = RequestHandler.Configuration(routes: routes, logger: logger, security: .localPlain,
                                                         maxBodyBytes: Self.maxBodyBytes, requestGuard: nil, refusalLog: refusalLog)
        let admission = ConnectionAdmission(limits: limits)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .childChannelInitializer { channel in
                guard let options = channel as? any SocketOptionProvider else {
                    return channel.close()
                }
                // Half-closed by the peer is still worth an answer (the refusal's 403).
                _ = channel.setOption(.allowRemoteHalfClosure, value: true)
                let peer: EventLoopFuture<PeerProcessCredentials> = options.unsafeGetSocketOption(
                    level: NIOBSDSocket.OptionLevel.socket, name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
                return peer.flatMapThrowing { credentials in
                    let sync = channel.pipeline.syncOperations
                    guard allowedUIDs.contains(credentials.uid) else {
                        if let suppressed = refusalLog.admit("uid \(credentials.uid)") {
                            logger.notice("control socket: refused a local user", metadata: [
                                "uid": "\(credentials.uid)", "pid": "\(credentials.pid)", "socket": "\(path)",
                                "suppressed": "\(suppressed)",
                            ])
                        }
                        try sync.addHandler(RefuseLocalPeer(uid: credentials.uid))
                        return
                    }
                    switch admission.admit("local") {
                    case .refused:
                        try sync.addHandler(RefuseConnection())
                        return
                    case .admitted:
                        channel.closeFuture.whenComplete { _ in admission.release("local") }
                    }
                    let deadlines = ConnectionDeadlines(limits: limits, tls: false, logger: logger, refusalLog: refusalLog)
                    try sync.addHandler(deadlines)
                    try sync.configureHTTPServerPipeline(withErrorHandling: false)
                    try sync.addHandler(RequestHandler(configuration, deadlines: deadlines))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
        } catch {
            throw LocalSocketError(description: "cannot serve the control socket \(path): \(BindFailure.reason(error))")
        }
        guard chmod(path, 0o600) == 0 else {
            let why = String(cString: strerror(errno))
            try? await channel.close()
            unlink(path)
            throw LocalSocketError(description: "cannot make the control socket \(path) root-only (chmod 0600): \(why)")
        }
        return HTTPEndpoint(channel: channel, admission: admission, socketFile: path)
    }

    /// Unlinks `path` when it is a socket nobody answers on; refuses a live one or a non-socket.
    static func removeStaleSocket(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw LocalSocketError(description: "\(path) exists and is not a socket: remove it or choose another --control path")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: sun.sun_path) else {
            throw LocalSocketError(description: "control socket path \(path) is too long (at most 107 bytes)")
        }
        withUnsafeMutableBytes(of: &sun.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &sun) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 {
            throw LocalSocketError(description: "another process serves \(path) (another proxy with the same TUN?)")
        }
        unlink(path)
    }
}

/// Answers a connection from a local user who may not use the control socket: one 403 with
/// the reason, then the sending half is shut. What the peer sends is read and dropped (closing
/// with unread bytes would reset the connection and lose the answer) until it closes, or for at
/// most 2 s. No request is parsed, no route runs.
final class RefuseLocalPeer: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let uid: UInt32
    init(uid: UInt32) { self.uid = uid }

    func channelActive(context: ChannelHandlerContext) {
        let body = "{\"error\":\"the proxy's control socket is for root only (you are uid \(uid))\"}\n"
        let text = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in bound.value.close(mode: .output, promise: nil) }
        context.eventLoop.scheduleTask(in: .seconds(2)) { bound.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
