import ControlPlane
import Engine
import Forwarding
import Foundation
import Logging
import Media
import Namespace
import NIOCore
import NIOHTTP1
import Synchronization
import Wire

/// The proxy's device-facing API (openapi/proxy-devices.yaml; TSMP draft §4.2.1): MFRs from
/// authenticated devices, the MTR to the target's agent, and the engine's migration between.
///
/// Which device holds a flow is what the proxy observed, never what a device claims
/// (``DeviceSightings``): the caller owns the flows whose device-side address is the address
/// its authenticated request came from; another device of the caller's user owns the flows
/// from the address where its agent just proved its identity to the proxy (a TLS handshake to
/// its locator). Two devices seen at one address recently own nothing there (the proxy
/// refuses to guess). A device may list and move only its own flows, only to devices of its
/// own user, and pull only its own user's flows; anything else is refused as a whole before
/// anything starts.
public final class DeviceAPI: Sendable, JSONRouting {
    public struct Options: Sendable {
        public var credential: Credential
        public var insecureLab: Bool
        public var defaultDeadline: Duration
        /// Two devices seen at one address within this make it ambiguous.
        public var ambiguityWindow: Duration
        /// How long the proxy waits for an agent to prove who it is.
        public var agentProofTimeout: Duration
        public init(credential: Credential, insecureLab: Bool, defaultDeadline: Duration = .seconds(10),
                    ambiguityWindow: Duration = .seconds(600), agentProofTimeout: Duration = .seconds(5)) {
            self.credential = credential; self.insecureLab = insecureLab; self.defaultDeadline = defaultDeadline
            self.ambiguityWindow = ambiguityWindow; self.agentProofTimeout = agentProofTimeout
        }
    }

    let engine: any EngineAccess
    /// The media relay (`--intercept rtsp/PORT`), whose sessions an MFR may move too.
    let media: MediaRelayService?
    let namespace: PeerClient
    let options: Options
    let reachability: DeviceReachability
    let group: any EventLoopGroup
    let logger: Logger
    static let ownersKept = 4096
    /// Which user started each migration (only that user may follow it).
    private let owners = Mutex<[MigrationID: UserID]>([:])
    /// Which user started each media session's latest migration.
    let mediaOwners = Mutex<[MediaSessionID: UserID]>([:])
    /// Where the proxy saw each device (the only source of flow ownership).
    let sightings: Mutex<DeviceSightings>
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    public init(engine: any EngineAccess, options: Options, reachability: DeviceReachability,
                group: any EventLoopGroup, logger: Logger, media: MediaRelayService? = nil) throws {
        self.engine = engine
        self.media = media
        self.options = options
        self.reachability = reachability
        self.group = group
        self.logger = logger
        self.sightings = Mutex(DeviceSightings(ambiguityWindowMillis: Self.millis(options.ambiguityWindow)))
        self.origin = clock.now
        self.namespace = try PeerClient(baseURL: options.credential.namespaceURL, credential: options.credential,
                                         insecureLab: options.insecureLab, expectedServer: .identity(.namespace), group: group)
    }

    public var routes: [String: HTTPEndpoint.Handler] {
        [
            "GET /v1/device/flows": { [self] request in
                await asDevice(request) { [self] caller in
                    let subject = try request.query["device"].map { try DeviceID($0) } ?? caller.device
                    guard subject.user == caller.device.user else {
                        throw RouteRefusal(.forbidden, "\(subject) is not a device of \(caller.device.user)")
                    }
                    let (address, flows) = try await heldFlows(of: subject, caller: caller)
                    return DeviceFlows(device: subject, address: address, flows: flows,
                                       media: media.map { m in m.summaries().filter { $0.device == address } })
                }
            },
            "POST /v1/mfr": { [self] request in
                await asDevice(request, status: .accepted) { [self] caller in try await migrationFrom(caller, request) }
            },
            "GET /v1/mfr/media": { [self] request in
                await asDevice(request) { [self] caller in try mediaReport(request, caller: caller) }
            },
            "POST /v1/vsr": { [self] request in
                await asDevice(request) { [self] caller in try await share(from: caller.device, request) }
            },
            "GET /v1/mfr": { [self] request in
                await asDevice(request) { [self] caller in
                    let ids = (request.query["id"] ?? "").split(separator: ",").map { UInt64($0).map { MigrationID($0) } }
                    guard !ids.isEmpty, ids.allSatisfy({ $0 != nil }) else {
                        throw RouteRefusal(.badRequest, "give ?id=N[,N...] (migration ids from the MFR's answer)")
                    }
                    let wanted = ids.map { $0! }
                    let foreign = owners.withLock { o in wanted.filter { o[$0] != caller.device.user } }
                    if let first = foreign.first {
                        throw RouteRefusal(.forbidden, "migration \(first) was not started by \(caller.device.user)")
                    }
                    return MigrationReports(migrations: await engine.reports(wanted))
                }
            },
        ]
    }

    // MARK: MFR

    private func migrationFrom(_ observed: Caller, _ request: HTTPEndpoint.Request) async throws -> MigrationFromAnswer {
        let caller = observed.device
        let mfr = try Self.decode(MigrationFromRequest.self, request)
        let owner: DeviceID, target: DeviceID
        switch (mfr.to, mfr.retrieveFrom) {
        case (let to?, nil): owner = caller; target = to
        case (nil, let from?): owner = from; target = caller
        default: throw RouteRefusal(.badRequest, "give exactly one of \"to\" (move your flows) and \"retrieveFrom\" (pull a device's flows here)")
        }
        guard target.user == caller.user else { throw RouteRefusal(.forbidden, "\(target) is not a device of \(caller.user)") }
        guard owner.user == caller.user else { throw RouteRefusal(.forbidden, "\(owner) is not a device of \(caller.user)") }
        let deadline: Duration
        if let seconds = mfr.deadlineSeconds {
            guard seconds > 0 && seconds <= 600 else { throw RouteRefusal(.badRequest, "deadlineSeconds must be within (0, 600]") }
            deadline = .milliseconds(Int64(seconds * 1000))
        } else {
            deadline = options.defaultDeadline
        }
        if let sessions = mfr.mediaSessions {
            guard mfr.flows == nil, mfr.localPorts == nil, mfr.all == nil else {
                throw RouteRefusal(.badRequest, "give media sessions and flows in separate MFRs")
            }
            return try await migrateMedia(sessions, owner: owner, target: target, caller: observed, deadline: deadline)
        }
        let (_, held) = try await heldFlows(of: owner, caller: observed)
        let flows: [FlowID]
        switch (mfr.flows, mfr.localPorts, mfr.all ?? false) {
        case (let ids?, nil, false):
            guard !ids.isEmpty, ids.count <= 1024 else { throw RouteRefusal(.badRequest, "give 1 to 1024 flows, or \"all\": true") }
            guard Set(ids).count == ids.count else { throw RouteRefusal(.badRequest, "a flow is listed twice") }
            let heldIDs = Set(held.map(\.id.rawValue))
            if let stranger = ids.first(where: { !heldIDs.contains($0) }) {
                throw RouteRefusal(.forbidden, "flow \(stranger) is not one of \(owner)'s flows")
            }
            flows = ids.map { FlowID($0) }
        case (nil, let ports?, false):
            guard !ports.isEmpty, ports.count <= 1024 else { throw RouteRefusal(.badRequest, "give 1 to 1024 local ports") }
            flows = try ports.map { port in
                guard let f = held.first(where: { $0.device.port == port }) else {
                    throw RouteRefusal(.notFound, "\(owner) has no flow from its port \(port)")
                }
                return f.id
            }
        case (nil, nil, true):
            flows = held.filter { $0.state == .established && $0.migration == nil }.map(\.id)
            guard !flows.isEmpty else { throw RouteRefusal(.notFound, "\(owner) holds no established flow to move") }
        default:
            throw RouteRefusal(.badRequest, "give one of \"flows\": [ids], \"localPorts\": [ports] or \"all\": true")
        }
        guard owner != target else { throw RouteRefusal(.badRequest, "\(owner) already holds these flows") }
        let (targetLocator, agentPort, targetAddress) = try await onlineAgent(of: target)
        let started = await engine.startMigrations(flows, to: MigrationTarget(address: targetAddress, awaitsPort: true),
                                                   deadline: deadline)
        let summaries = Dictionary(uniqueKeysWithValues: held.map { ($0.id, $0) })
        for result in started {
            guard let mid = result.migration, let flow = summaries[result.flow] else { continue }
            owners.withLock { o in
                o[mid] = caller.user
                // Bounded: the oldest migrations are forgotten first (the engine keeps few reports too).
                if o.count > Self.ownersKept { for old in o.keys.sorted().prefix(o.count - Self.ownersKept) { o[old] = nil } }
            }
            logger.info("MFR accepted", metadata: [
                "migration.id": "\(mid)", "flow.id": "\(result.flow)", "by": "\(caller)", "from": "\(owner)", "to": "\(target)",
            ])
            let transfer = Transfer(migration: mid, flow: flow, from: owner, to: target,
                                    agent: agentURL(targetLocator.address, agentPort), agentAddress: targetLocator.address,
                                    deadline: deadline)
            Task { await self.sendMTR(transfer) }
        }
        return MigrationFromAnswer(target: target, results: started)
    }

    /// Where `target`'s agent is, when it is online and reachable through a device interface.
    func onlineAgent(of target: DeviceID) async throws -> (locator: Locator, port: UInt16, address: IPAddress) {
        let resolution = try await resolve(target)
        guard resolution.status == .online else {
            throw RouteRefusal(.conflict, "\(target) is \(resolution.status.rawValue): only an online device takes flows")
        }
        guard let locator = resolution.locator, let port = locator.agentPort, let address = IPAddress(locator.address) else {
            throw RouteRefusal(.conflict, "\(target) has no agent address in the namespace (is its agent running?)")
        }
        if let why = reachability.problem(reaching: address) {
            throw RouteRefusal(.unprocessableEntity, "cannot migrate to \(target) at \(address): \(why)")
        }
        return (locator, port, address)
    }

    struct Transfer: Sendable {
        var migration: MigrationID
        var flow: FlowSummary
        var from: DeviceID
        var to: DeviceID
        var agent: String
        var agentAddress: String
        var deadline: Duration
    }

    /// After the cut: MTR to the target's agent, bind the port it answers, tell it to connect.
    /// A failure is logged; the engine's deadline then rolls the flow back to its device.
    private func sendMTR(_ t: Transfer) async {
        let clock = ContinuousClock()
        let start = clock.now
        var report: MigrationReport?
        while clock.now - start < t.deadline {
            report = await engine.reports([t.migration]).first
            // requested: the flow is back from the kernel path and its state not yet known again.
            guard let r = report, !r.isFinished, r.phase == .paused || r.phase == .requested else { break }
            try? await Task.sleep(for: .milliseconds(2))
        }
        guard let r = report, r.phase == .oldDeviceCut, let toDevice = r.cutOffsetToDevice, let toServer = r.cutOffsetToServer else {
            logger.warning("no MTR sent: the migration did not reach its cut", metadata: [
                "migration.id": "\(t.migration)", "phase": "\(report?.phase.rawValue ?? "gone")",
            ])
            return
        }
        do {
            let agent = try PeerClient(baseURL: t.agent, credential: options.credential, insecureLab: options.insecureLab,
                                        expectedServer: .identity(try .device(t.to.description)), group: group)
            let mtr = MigrationToRequest(migration: t.migration.rawValue, flow: t.flow.id.rawValue,
                                         destination: t.flow.original.description, fromDevice: t.from, toDevice: t.to,
                                         cutOffsetToDevice: toDevice, cutOffsetToServer: toServer)
            let answer: MigrationToAnswer = try await agent.call("POST", "/v1/mtr", json: mtr)
            let answered = clock.now
            // The target's agent proved who it is at this address: its flows come from there.
            saw(t.to, at: t.agentAddress)
            if case .failure(let why) = await engine.bindMigrationSourcePort(answer.sourcePort, to: t.migration) {
                logger.warning("MTR answered too late", metadata: ["migration.id": "\(t.migration)", "reason": "\(why)"])
                return
            }
            let _: Empty = try await agent.call("POST", "/v1/mtr/connect", json: MigrationConnect(migration: t.migration.rawValue))
            logger.info("MTR sent", metadata: [
                "migration.id": "\(t.migration)", "to": "\(t.to)", "agent": "\(t.agent)", "source_port": "\(answer.sourcePort)",
                "request_to_mtr_ms": "\(Self.milliseconds(answered - start))",
            ])
        } catch {
            logger.warning("MTR failed; the flow will roll back at its deadline", metadata: [
                "migration.id": "\(t.migration)", "to": "\(t.to)", "agent": "\(t.agent)", "error": "\(error)",
            ])
        }
    }

    static func milliseconds(_ d: Duration) -> String {
        String(format: "%.3f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }

    // MARK: Helpers

    func resolve(_ did: DeviceID) async throws -> Resolution {
        do {
            return try await namespace.call("GET", "/v1/resolve", query: ["did": did.description])
        } catch let e as PeerClientError {
            if case .refused(404, _) = e { throw RouteRefusal(.notFound, "\(did) is not registered") }
            throw RouteRefusal(.badGateway, "the namespace could not resolve \(did): \(e)")
        }
    }

    private func locator(of did: DeviceID) async throws -> Locator {
        guard let locator = try await resolve(did).locator else {
            throw RouteRefusal(.conflict, "\(did) has no locator yet (its agent has not sent a heartbeat)")
        }
        return locator
    }

    /// A device speaking to this endpoint, and the address its request came from.
    struct Caller: Sendable {
        var device: DeviceID
        var address: String
    }

    /// The flows `owner` holds: those from the address the proxy attributes to it. The caller's
    /// own address is the one its request came from; another device's is proved by its agent.
    func heldFlows(of owner: DeviceID, caller: Caller) async throws -> (address: String, flows: [FlowSummary]) {
        if owner != caller.device { try await proveWhereabouts(of: owner) }
        let attributed = sightings.withLock { $0.ownedAddress(of: owner, now: nowMillis()) }
        switch attributed {
        case .failure(let ambiguity):
            throw RouteRefusal(.conflict, ambiguity.description)
        case .success(nil):
            throw RouteRefusal(.conflict, "the proxy has not seen \(owner) (its agent must answer at its locator)")
        case .success(let address?):
            return (address, await engine.listing().flows.filter { $0.device.address.description == address })
        }
    }

    /// Asks `did`'s agent, at the locator the namespace has for it, who it is: the TLS handshake
    /// (the device's own certificate at that address) is the proof, and a sighting follows.
    /// A locator is only where to ask; a wrong or foreign one proves nothing and is refused.
    func proveWhereabouts(of did: DeviceID) async throws {
        let locator = try await locator(of: did)
        guard let port = locator.agentPort else {
            throw RouteRefusal(.conflict, "\(did) has no agent address in the namespace: the proxy acts on a device's flows only where its agent proves who it is")
        }
        let url = agentURL(locator.address, port)
        do {
            let agent = try PeerClient(baseURL: url, credential: options.credential, insecureLab: options.insecureLab,
                                       expectedServer: .identity(try .device(did.description)), group: group,
                                       timeout: .nanoseconds(Int64(options.agentProofTimeout.components.seconds) * 1_000_000_000
                                                             + options.agentProofTimeout.components.attoseconds / 1_000_000_000))
            let answer: WhoAmI = try await agent.call("GET", "/v1/identity")
            guard answer.identity == (try .device(did.description)) else {
                throw PeerClientError.wrongServer("it answered as \(answer.identity)")
            }
        } catch {
            logger.notice("device not where its locator says", metadata: ["did": "\(did)", "agent": "\(url)", "error": "\(error)"])
            throw RouteRefusal(.conflict, "cannot verify where \(did) is: its agent at \(url) did not prove it is \(did) (\(error))")
        }
        saw(did, at: locator.address)
    }

    func saw(_ did: DeviceID, at address: String) {
        guard let canonical = Self.canonical(address) else { return }
        sightings.withLock { $0.saw(did, at: canonical, now: nowMillis()) }
    }

    func agentURL(_ address: String, _ port: UInt16) -> String { HostPort.url(address, Int(port), insecureLab: options.insecureLab) }

    func nowMillis() -> Int64 { Self.millis(clock.now - origin) }

    static func millis(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    /// The canonical text of an observed address; an IPv4-mapped IPv6 address is its IPv4 address.
    static func canonical(_ address: String) -> String? {
        let text = address.lowercased().hasPrefix("::ffff:") && address.contains(".") ? String(address.dropFirst(7)) : address
        return Locator.canonicalAddress(text)
    }

    func asDevice<T: Encodable & Sendable>(_ request: HTTPEndpoint.Request, status: HTTPResponseStatus = .ok,
                                                   _ body: @escaping @Sendable (Caller) async throws -> T) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .device, let did = try? DeviceID(peer.name) else {
            return .error(.forbidden, "only devices talk to this endpoint (you are \(peer))")
        }
        guard let address = request.remoteAddress?.ipAddress.flatMap(Self.canonical) else {
            return .error(.forbidden, "the proxy can't tell which address this request came from")
        }
        return await Self.answering(status: status) { [self] in
            try await requireRegistered(did)
            // Seen here, now (and only once the namespace still knows it): the caller's flows are those from this address.
            saw(did, at: address)
            return try await body(Caller(device: did, address: address))
        }
    }

    /// Revocation (`NamespaceService.remove(device:by:)`): the certificate proves who the caller
    /// was certified as; the namespace's registry says whether it still is. The proxy asks on
    /// every device request (one SRR for the caller beside the target's), so a removed device
    /// is refused from its next request on, with the namespace's reason; when the namespace
    /// can't answer, the request is refused too (fail closed).
    private func requireRegistered(_ did: DeviceID) async throws {
        do {
            let _: Resolution = try await namespace.call("GET", "/v1/resolve", query: ["did": did.description])
        } catch let e as PeerClientError {
            if case .refused(let status, let reason) = e, status == 404 || status == 403 {
                throw RouteRefusal(.forbidden, reason)
            }
            throw RouteRefusal(.badGateway, "the namespace could not confirm \(did) is still registered: \(e)")
        }
    }
}

/// `GET /v1/device/flows`: a device's flows as the proxy sees them.
public struct DeviceFlows: Codable, Sendable {
    public var device: DeviceID
    /// The address the proxy attributes to the device (where it saw it), whose flows these are.
    public var address: String
    public var flows: [FlowSummary]
    /// The media relay's sessions whose player is at that address (`mN`, for `tsmp migrate --flow mN`).
    public var media: [MediaSessionSummary]?
}
