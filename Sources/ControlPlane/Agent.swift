import Foundation
import Logging
import Namespace
import NIOCore
import NIOHTTP1
import PacketIO
import Synchronization
import Wire

/// The device agent (TSMPA; TSMP draft §4.2.1, SMP draft §6.2.3-6.2.4): keeps the device
/// known to the namespace (heartbeats with its latest modification time, locator updates
/// when its address changes) and takes MTRs from proxies: binds a socket, answers the source
/// port, connects when told, and hands the connection to the local application.
public final class Agent: Sendable, JSONRouting {
    public struct Options: Sendable {
        public var credential: Credential
        /// The proxy's host (an IPv4 or IPv6 literal, or a name for the system resolver) and
        /// port: the locator is the address this device uses to reach it.
        public var proxyHost: String
        public var proxyPort: UInt16
        /// Where the agent takes MTRs.
        public var listenHost: String
        public var listenPort: Int
        public var handoff: ConnectionHandoff
        public var insecureLab: Bool
        public var heartbeatInterval: Duration
        /// A pending MTR not told to connect within this is dropped.
        public var pendingLifetime: Duration
        /// The command that decides on a share (VSR; `Agent+Share`); nil: shares are declined.
        public var onShare: String?
        /// The command that confirms a network-triggered media migration (`Agent+Media`); nil: none is.
        public var onQuality: String?
        public init(credential: Credential, proxyHost: String, proxyPort: UInt16, listenHost: String, listenPort: Int,
                    handoff: ConnectionHandoff, insecureLab: Bool, heartbeatInterval: Duration = .seconds(5),
                    pendingLifetime: Duration = .seconds(30), onShare: String? = nil, onQuality: String? = nil) {
            self.onQuality = onQuality
            self.credential = credential; self.proxyHost = proxyHost; self.proxyPort = proxyPort
            self.listenHost = listenHost; self.listenPort = listenPort; self.handoff = handoff; self.insecureLab = insecureLab
            self.heartbeatInterval = heartbeatInterval; self.pendingLifetime = pendingLifetime; self.onShare = onShare
        }
    }

    /// A socket bound for an MTR, waiting for `POST /v1/mtr/connect`.
    struct Pending: Sendable {
        var fd: Int32
        var port: UInt16
        var request: MigrationToRequest
        var destination: IPSocketAddress
        var since: ContinuousClock.Instant
    }

    public let options: Options
    public let did: DeviceID
    /// This device's copy of its user's group, kept by the heartbeats.
    public var group: NamespaceReplica { state.withLock { $0.replica } }
    let logger: Logger
    let namespace: PeerClient
    /// The event loops its own calls run on (the MFR after a confirmed quality notice).
    let transportGroup: any EventLoopGroup
    private let state: Mutex<State>
    /// Heartbeats sent and MTRs taken (`tsmp agent --metrics`).
    public let metrics = ServiceMetrics.agent()

    struct State {
        init(user: UserID) { replica = NamespaceReplica(user: user) }
        var pending: [UInt64: Pending] = [:]
        var replica: NamespaceReplica
        var locator: Locator?
        var transfersReceived = 0
        /// Contact requests already logged (each once).
        var introductionsSeen: Set<Int64> = []
    }

    public init(options: Options, group: any EventLoopGroup, logger: Logger) throws {
        guard options.credential.identity.role == .device, let did = try? DeviceID(options.credential.identity.name) else {
            throw RouteRefusal(.badRequest, "the agent needs a device credential, not \(options.credential.identity)")
        }
        self.options = options
        self.did = did
        self.logger = logger
        self.transportGroup = group
        self.state = Mutex(State(user: did.user))
        self.namespace = try PeerClient(baseURL: options.credential.namespaceURL, credential: options.credential,
                                         insecureLab: options.insecureLab, expectedServer: .identity(.namespace), group: group)
    }

    /// MTRs handled so far (for tests and logs).
    public var transfersReceived: Int { state.withLock { $0.transfersReceived } }

    // MARK: MTR endpoint

    public var routes: [String: HTTPEndpoint.Handler] {
        [
            "POST /v1/mtr": { [self] request in await prepare(request) },
            "POST /v1/mtr/connect": { [self] request in await connect(request) },
            "POST /v1/vsr": { [self] request in await share(request) },
            "POST /v1/mtr/media": { [self] request in await mediaTransfer(request) },
            "POST /v1/quality": { [self] request in await quality(request) },
            // The proxy proves where this device is by this call: its TLS handshake shows the
            // device's certificate at the address it connected to (flow ownership, DESIGN §7).
            "GET /v1/identity": { [self] request in
                guard let peer = request.peer else { return Self.noIdentity }
                guard peer.role == .proxy else { return .error(.forbidden, "only a proxy asks an agent who it is (you are \(peer))") }
                return Self.json(WhoAmI(identity: options.credential.identity))
            },
        ]
    }

    private func prepare(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .proxy else { return .error(.forbidden, "only a proxy sends MTRs (you are \(peer))") }
        return await Self.answering(status: .ok) {
            let mtr = try Self.decode(MigrationToRequest.self, request)
            guard mtr.toDevice == did else {
                throw RouteRefusal(.badRequest, "this agent is \(did), not \(mtr.toDevice)")
            }
            guard mtr.fromDevice.user == did.user else {
                throw RouteRefusal(.forbidden, "\(mtr.fromDevice) is not a device of \(did.user)")
            }
            guard let destination = Self.parseEndpoint(mtr.destination) else {
                throw RouteRefusal(.badRequest, "destination must be IPv4:PORT or [IPv6]:PORT, not \"\(mtr.destination)\"")
            }
            expirePending()
            if state.withLock({ $0.pending[mtr.migration] != nil }) {
                throw RouteRefusal(.conflict, "migration \(mtr.migration) already has a pending MTR")
            }
            let bound: (fd: Int32, port: UInt16)
            do { bound = try Syscall.boundTCPSocket(like: destination) } catch {
                throw RouteRefusal(.serviceUnavailable, "cannot bind a socket for the transfer: \(error)")
            }
            state.withLock {
                $0.pending[mtr.migration] = Pending(fd: bound.fd, port: bound.port, request: mtr, destination: destination,
                                                    since: .now)
            }
            logger.info("MTR accepted", metadata: [
                "migration.id": "\(mtr.migration)", "flow.id": "\(mtr.flow)", "from": "\(mtr.fromDevice)",
                "destination": "\(mtr.destination)", "source_port": "\(bound.port)",
                "cut.to_device": "\(mtr.cutOffsetToDevice)", "cut.to_server": "\(mtr.cutOffsetToServer)",
            ])
            return MigrationToAnswer(sourcePort: bound.port)
        }
    }

    private func connect(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .proxy else { return .error(.forbidden, "only a proxy sends MTRs (you are \(peer))") }
        return await Self.answering(status: .accepted) {
            let body = try Self.decode(MigrationConnect.self, request)
            guard let pending = state.withLock({ $0.pending.removeValue(forKey: body.migration) }) else {
                throw RouteRefusal(.notFound, "no pending MTR for migration \(body.migration)")
            }
            let handoff = options.handoff, logger = logger
            Thread.detachNewThread { [self] in
                do {
                    try Syscall.connect(pending.fd, to: pending.destination, timeoutSeconds: 10)
                    try Syscall.clearTimeouts(pending.fd)
                } catch {
                    logger.error("transfer failed: cannot connect", metadata: [
                        "migration.id": "\(pending.request.migration)", "destination": "\(pending.request.destination)",
                        "error": "\(error)",
                    ])
                    try? Syscall.close(pending.fd)
                    return
                }
                state.withLock { $0.transfersReceived += 1 }
                logger.info("transfer connected", metadata: [
                    "migration.id": "\(pending.request.migration)", "flow.id": "\(pending.request.flow)",
                    "destination": "\(pending.request.destination)", "handoff": "\(handoff)",
                ])
                handoff.start(pending.fd, environment: Self.environment(pending), logger: logger)
            }
            return Empty()
        }
    }

    static func environment(_ p: Pending) -> [String: String] {
        [
            "TSMP_MIGRATION_ID": "\(p.request.migration)",
            "TSMP_FLOW_ID": "\(p.request.flow)",
            "TSMP_DESTINATION": p.request.destination,
            "TSMP_FROM_DEVICE": p.request.fromDevice.description,
            "TSMP_TO_DEVICE": p.request.toDevice.description,
            "TSMP_CUT_OFFSET_TO_DEVICE": "\(p.request.cutOffsetToDevice)",
            "TSMP_CUT_OFFSET_TO_SERVER": "\(p.request.cutOffsetToServer)",
            "TSMP_SOURCE_PORT": "\(p.port)",
        ]
    }

    private func expirePending() {
        let lifetime = options.pendingLifetime
        let stale = state.withLock { s -> [Pending] in
            let old = s.pending.values.filter { $0.since.duration(to: .now) > lifetime }
            for p in old { s.pending[p.request.migration] = nil }
            return Array(old)
        }
        for p in stale {
            logger.warning("pending MTR dropped: never told to connect", metadata: ["migration.id": "\(p.request.migration)"])
            try? Syscall.close(p.fd)
        }
    }

    /// "A.B.C.D:PORT" or "[IPv6]:PORT" (the flow's destination as the proxy names it), port
    /// not 0; nil for anything else.
    static func parseEndpoint(_ text: String) -> IPSocketAddress? {
        guard let e = IPEndpoint(text), e.port != 0 else { return nil }
        return IPSocketAddress(e)
    }

    // MARK: Namespace: heartbeats and locator updates

    /// The address this device reaches the proxy from (its care-of address): toward the
    /// proxy's first IPv4 address when its host has one (`Syscall.preferringIPv4`), else its
    /// first IPv6 address (resolved again each time: a name may move, and the device's own
    /// addresses do).
    public func currentLocator() -> Locator? {
        guard let resolved = try? Syscall.resolve(options.proxyHost, port: options.proxyPort),
              let proxy = Syscall.preferringIPv4(resolved).first,
              let local = try? Syscall.sourceAddress(toward: proxy) else { return nil }
        return try? Locator(address: local.literal, agentPort: UInt16(clamping: options.listenPort))
    }

    /// One heartbeat; a changed locator is sent at once as a locator update too.
    public func heartbeat() async throws -> HeartbeatAnswer {
        let locator = currentLocator()
        let (known, previous) = state.withLock { ($0.replica.latestModificationMillis, $0.locator) }
        if let locator, let previous, locator != previous {
            let _: Resolution = try await namespace.call("PUT", "/v1/locator", json: locator)
            logger.info("locator updated", metadata: ["from": "\(previous.address)", "to": "\(locator.address)"])
        }
        let answer: HeartbeatAnswer = try await namespace.call(
            "POST", "/v1/heartbeat", json: HeartbeatRequest(knownModificationMillis: known, locator: locator))
        let fresh = state.withLock { s in
            s.locator = locator
            s.replica.apply(answer)
            let fresh = (answer.introductions ?? []).filter { !s.introductionsSeen.contains($0.id) }
            s.introductionsSeen = Set((answer.introductions ?? []).map(\.id))
            return fresh
        }
        // SMP draft §6.2.2: the request reaches every device of the user; any one confirms it.
        for request in fresh {
            logger.notice("contact request: confirm with tsmp contacts accept \(request.id) --name NAME", metadata: [
                "introduction.id": "\(request.id)", "from": "\(request.from)",
            ])
        }
        for change in answer.statusChanges where change.device != did {
            if case .status(let status) = change.change {
                logger.info("device status", metadata: ["did": "\(change.device)", "status": "\(status.rawValue)"])
            }
        }
        return answer
    }

    /// Heartbeats every `heartbeatInterval` until cancelled; failures are logged, not fatal.
    public func runHeartbeats() async {
        var failing = false
        while !Task.isCancelled {
            expirePending()
            do {
                _ = try await heartbeat()
                metrics.count("heartbeats", .ok)
                if failing { logger.info("namespace reachable again") }
                failing = false
            } catch {
                metrics.count("heartbeats", .error)
                if !failing { logger.warning("heartbeat failed", metadata: ["error": "\(error)"]) }
                failing = true
            }
            try? await Task.sleep(for: options.heartbeatInterval)
        }
    }

    /// Closes the sockets of pending MTRs.
    public func shutdown() {
        let pending = state.withLock { s in defer { s.pending = [:] }; return Array(s.pending.values) }
        for p in pending { try? Syscall.close(p.fd) }
    }
}
