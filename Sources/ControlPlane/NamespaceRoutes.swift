import Foundation
import Namespace
import NIOHTTP1

/// The namespace service's HTTP API (openapi/namespace.yaml) over a `NamespaceService` and the
/// CA that issues the credentials. Every handler first checks who is speaking (the identity
/// the endpoint authenticated) and what that identity may do; a refusal changes nothing.
public struct NamespaceRoutes: Sendable, JSONRouting {
    public let service: NamespaceService
    public let authority: CertificateAuthority
    public let namespaceURL: String
    /// How long issued device and proxy certificates are valid.
    public let credentialValidity: TimeInterval
    public let clock: @Sendable () -> Int64
    /// Which locators devices may set (heartbeats and `PUT /v1/locator`): by default only the
    /// address their request came from.
    public let locatorPolicy: LocatorPolicy

    public init(service: NamespaceService, authority: CertificateAuthority, namespaceURL: String,
                credentialValidity: TimeInterval = 365 * 86_400, locatorPolicy: LocatorPolicy = .sourceAddress,
                clock: @escaping @Sendable () -> Int64) {
        self.service = service; self.authority = authority; self.namespaceURL = namespaceURL
        self.credentialValidity = credentialValidity; self.locatorPolicy = locatorPolicy; self.clock = clock
    }

    public var routes: [String: HTTPEndpoint.Handler] {
        baseRoutes.merging(contactRoutes) { first, _ in first }
    }

    private var baseRoutes: [String: HTTPEndpoint.Handler] {
        [
            "GET /v1/whoami": { request in
                guard let peer = request.peer else { return Self.noIdentity }
                return Self.json(WhoAmI(identity: peer))
            },
            "POST /v1/users": { request in await registerUser(request) },
            "POST /v1/proxies": { request in await registerProxy(request) },
            "POST /v1/devices": { request in await introduce(request) },
            "GET /v1/devices": { request in await asDevice(request) { did in try await deviceList(of: did.user) } },
            "DELETE /v1/devices": { request in
                await asDevice(request) { did in try await service.remove(device: try Self.didQuery(request), by: did) }
            },
            "PUT /v1/devices/name": { request in
                await asDevice(request, RenameDeviceRequest.self) { did, body in
                    try await service.rename(device: body.did, to: body.name, by: did, atMillis: body.atMillis)
                }
            },
            "POST /v1/credentials": { request in await renew(request) },
            "POST /v1/heartbeat": { request in
                await asDevice(request, HeartbeatRequest.self) { did, body in
                    if let locator = body.locator { try checkLocator(locator, of: request) }
                    return try await service.heartbeat(from: did, knownModificationMillis: body.knownModificationMillis, locator: body.locator)
                }
            },
            "PUT /v1/locator": { request in
                await asDevice(request, Locator.self) { did, locator in
                    try checkLocator(locator, of: request)
                    try await service.updateLocator(of: did, to: locator)
                    return try await service.resolve(did)
                }
            },
            "PUT /v1/status": { request in
                await asDevice(request, StatusEdit.self) { did, edit in
                    guard edit.status != .offline else {
                        throw NamespaceError.invalid("a device can't set itself offline: it is marked offline when its heartbeats stop")
                    }
                    try await service.setStatus(of: did, to: edit.status, atMillis: edit.atMillis)
                    return try await service.resolve(did)
                }
            },
            "PUT /v1/preferences": { request in
                await asDevice(request, PreferencesEdit.self) { did, edit in
                    try await service.setPreferences(by: did, ranking: edit.ranking, atMillis: edit.atMillis)
                    return try await deviceList(of: did.user)
                }
            },
            "GET /v1/changes": { request in
                await asDevice(request) { did in
                    var since: Int64?
                    if let text = request.query["since"] {
                        guard let value = Int64(text) else { throw NamespaceError.invalid("since must be milliseconds since the epoch, not \"\(text)\"") }
                        since = value
                    }
                    return ChangeList(changes: try await service.changes(of: did.user, sinceMillis: since))
                }
            },
            "GET /v1/resolve": { request in await resolve(request) },
        ]
    }

    // MARK: Registration (admin) and introduction (device)

    /// A repeat of a registration or introduction with a CSR for the same key (a client that
    /// never got the first answer) gets the same answer: 201, a fresh certificate for that key,
    /// the device's record (`NamespaceService.registerUser`); any other repeat is 409.
    private func registerUser(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .admin else { return .error(.forbidden, "only the namespace's admin registers users (you are \(peer))") }
        return await Self.answering(status: .created) {
            let body = try Self.decode(RegisterUserRequest.self, request)
            let user = try UserID(body.user)
            let did = try DeviceID(name: body.device, user: user)
            // Check the CSR before anything is stored: a bad one changes nothing.
            let identity = try Self.identity(.device(did.description))
            let certificate = try issue(body.csr, as: identity)
            let record = try await service.registerUser(user, firstDevice: body.device, key: try KeyFingerprint(csrPEM: body.csr))
            return IssuedCredential(identity: identity, certificate: certificate, ca: authority.caPEM, device: record)
        }
    }

    private func registerProxy(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .admin else { return .error(.forbidden, "only the namespace's admin adds proxies (you are \(peer))") }
        return await Self.answering(status: .created) {
            let body = try Self.decode(RegisterProxyRequest.self, request)
            let identity = try Self.identity(.proxy(body.name))
            let certificate = try issue(body.csr, as: identity)
            try await service.registerProxy(name: body.name, key: try KeyFingerprint(csrPEM: body.csr))
            return IssuedCredential(identity: identity, certificate: certificate, ca: authority.caPEM)
        }
    }

    private func introduce(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        await asDevice(request, IntroduceDeviceRequest.self, status: .created) { introducer, body in
            let did = try DeviceID(name: body.name, user: introducer.user)
            let identity = try Self.identity(.device(did.description))
            let certificate = try issue(body.csr, as: identity)
            let record = try await service.introduce(device: body.name, by: introducer, key: try KeyFingerprint(csrPEM: body.csr))
            return IssuedCredential(identity: identity, certificate: certificate, ca: authority.caPEM, device: record)
        }
    }

    /// The device's own certificate again, for the key in `csr` (before the old one expires).
    private func renew(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        await asDevice(request, RenewCredentialRequest.self, status: .created) { did, body in
            let identity = try Self.identity(.device(did.description))
            let certificate = try issue(body.csr, as: identity)
            let record = try await service.renewCredential(of: did, key: try KeyFingerprint(csrPEM: body.csr))
            return IssuedCredential(identity: identity, certificate: certificate, ca: authority.caPEM, device: record)
        }
    }

    /// `?did=NAME.UID`, required.
    private static func didQuery(_ request: HTTPEndpoint.Request) throws -> DeviceID {
        guard let text = request.query["did"] else { throw NamespaceError.invalid("give ?did=NAME.UID (the device to remove)") }
        return try DeviceID(text)
    }

    private func issue(_ csr: String, as identity: PeerIdentity) throws -> String {
        do {
            return try authority.issue(csrPEM: csr, as: identity, validity: credentialValidity)
        } catch {
            throw NamespaceError.invalid("certificate request refused: \(error)")
        }
    }

    // MARK: Resolution (SRR)

    private func resolve(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        let caller: DeviceID?
        switch peer.role {
        case .proxy:
            caller = nil
            do {
                guard try await service.proxyExists(peer.name) else {
                    return .error(.forbidden, "proxy \(peer.name) is not registered with this namespace")
                }
            } catch { return Self.failure(error) }
        case .device:
            guard let did = try? DeviceID(peer.name) else { return .error(.forbidden, "\(peer) is not a device identity") }
            caller = did
        default:
            return .error(.forbidden, "only devices and proxies resolve names (you are \(peer))")
        }
        return await Self.answering(status: .ok) { () async throws -> ResolveAnswer in
            if let caller { try await requireRegistered(caller) }
            // A proxy resolving for a share (VSR, SMP draft §5.1): `for` is the sharer.
            var sharer: DeviceID?
            if let text = request.query["for"] {
                guard caller == nil else { throw NamespaceError.forbidden("only a proxy resolves on behalf of a device") }
                let did = try DeviceID(text)
                try await requireRegistered(did)
                sharer = did
            }
            if let address = request.query["address"] {
                // A proxy asking which device's locator is an address (whom to ask about a media
                // session seen there, SMP §5.2); it then makes that device's agent prove it.
                guard caller == nil, sharer == nil else { throw NamespaceError.forbidden("only a proxy resolves an address") }
                guard let did = try await service.device(atAddress: address) else {
                    throw NamespaceError.notFound("no device's locator is \(address)")
                }
                return .device(try await service.resolve(did))
            }
            switch (request.query["did"], request.query["uid"]) {
            case (let did?, nil):
                let target = try DeviceID(did)
                if let caller, caller.user != target.user {
                    throw NamespaceError.forbidden("\(target) is not a device of \(caller.user)")
                }
                if let sharer { try await requireMayShare(sharer, with: target.user) }
                return .device(try await service.resolve(target))
            case (nil, let uid?):
                let user = try UserID(uid)
                if let caller, caller.user != user { throw NamespaceError.forbidden("you may resolve only \(caller.user)") }
                if let sharer { try await requireMayShare(sharer, with: user) }
                return .user(ResolutionList(devices: try await service.resolve(user: user)))
            default:
                throw NamespaceError.invalid("give exactly one of ?did=NAME.UID and ?uid=EMAIL")
            }
        }
    }

    /// Only friends may share with a user (each holds the other as a contact); a user may always
    /// share with its own devices.
    private func requireMayShare(_ sharer: DeviceID, with user: UserID) async throws {
        guard sharer.user != user else { return }
        guard try await service.areFriends(sharer.user, user) else {
            throw NamespaceError.forbidden("only friends may share with \(user): \(sharer.user) and \(user) are not each other's contacts")
        }
    }

    private enum ResolveAnswer: Encodable {
        case device(Resolution)
        case user(ResolutionList)
        func encode(to encoder: any Encoder) throws {
            switch self {
            case .device(let r): try r.encode(to: encoder)
            case .user(let l): try l.encode(to: encoder)
            }
        }
    }

    // MARK: Helpers

    /// A locator the policy refuses is a bad request (400, with the reason); nothing is stored.
    private func checkLocator(_ locator: Locator, of request: HTTPEndpoint.Request) throws {
        try locatorPolicy.check(locator, cameFrom: request.remoteAddress?.ipAddress)
    }

    /// A name that is no valid identity is a bad request.
    private static func identity(_ make: @autoclosure () throws -> PeerIdentity) throws -> PeerIdentity {
        do { return try make() } catch { throw RouteRefusal(.badRequest, "\(error)") }
    }

    private func deviceList(of user: UserID) async throws -> DeviceList {
        DeviceList(user: user, devices: try await service.devices(of: user),
                   preferences: try await service.preferences(of: user),
                   latestModificationMillis: try await service.latestModificationMillis(of: user))
    }

    /// A device that the CA certified but the namespace no longer knows (removed, or never
    /// registered) is refused, with which of the two: the registry is the revocation list
    /// (`NamespaceService.remove(device:by:)`), read on every request.
    private func requireRegistered(_ did: DeviceID) async throws {
        if let why = try await service.refusal(of: did) { throw NamespaceError.forbidden(why) }
    }

    /// Runs `body` for a registered device caller.
    func asDevice<T: Encodable & Sendable>(_ request: HTTPEndpoint.Request,
                                                   _ body: @escaping @Sendable (DeviceID) async throws -> T) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .device, let did = try? DeviceID(peer.name) else {
            return .error(.forbidden, "only devices may do this (you are \(peer))")
        }
        return await Self.answering(status: .ok) {
            try await requireRegistered(did)
            return try await body(did)
        }
    }

    /// Runs `body` with the decoded request body for a registered device caller.
    func asDevice<B: Decodable, T: Encodable & Sendable>(_ request: HTTPEndpoint.Request, _ type: B.Type,
                                                                 status: HTTPResponseStatus = .ok,
                                                                 _ body: @escaping @Sendable (DeviceID, B) async throws -> T) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .device, let did = try? DeviceID(peer.name) else {
            return .error(.forbidden, "only devices may do this (you are \(peer))")
        }
        return await Self.answering(status: status) {
            let decoded = try Self.decode(B.self, request)
            try await requireRegistered(did)
            return try await body(did, decoded)
        }
    }
}
