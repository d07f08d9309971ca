import ControlPlane
import Foundation
import Logging
import Namespace
import NIOPosix
import Synchronization
import Testing
import TestSupport

/// The namespace service's HTTP API (openapi/namespace.yaml) end to end on loopback: the real
/// routes over a real SQLite store, mutual TLS with credentials issued through the API itself
/// (keys made client-side, CSRs signed by the service's CA), an injected clock.
/// The service's clock in these tests: milliseconds since the epoch, moved by hand.
final class ManualClock: Sendable {
    private let value = Mutex<Int64>(1_800_000_000_000)
    var now: Int64 { value.withLock { $0 } }
    func advance(_ millis: Int64) { value.withLock { $0 += millis } }
}

@Suite("Namespace API over mutual TLS")
struct NamespaceAPITests {
    final class Service: Sendable {
        let ca: CertificateAuthority
        let group: MultiThreadedEventLoopGroup
        let store: any NamespaceStore
        let service: NamespaceService
        let endpoint: HTTPEndpoint
        let routes: NamespaceRoutes
        let url: String
        let clock = ManualClock()

        /// `locatorPolicy`: these tests speak from 127.0.0.1 for devices that are elsewhere
        /// (10.x), which only `.unattributed` takes; the attribution tests set `.sourceAddress`.
        init(database: String = "sqlite::memory:", ca: CertificateAuthority? = nil,
             locatorPolicy: LocatorPolicy = .unattributed) async throws {
            self.ca = try ca ?? CertificateAuthority.create()
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let manual = self.clock
            let clock: @Sendable () -> Int64 = { manual.now }
            store = try await NamespaceDatabase.open(database, logger: Logger(label: "test"))
            service = NamespaceService(store: store, clock: clock, heartbeatIntervalMillis: 1000, missedHeartbeats: 3)
            let server = try self.ca.issueCredential(for: .namespace, namespaceURL: "")
            routes = NamespaceRoutes(service: service, authority: self.ca, namespaceURL: "", locatorPolicy: locatorPolicy, clock: clock)
            endpoint = try await HTTPEndpoint.start(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test"),
                                                    routes: routes.routes, security: .mutualTLS(try ServerTLS(credential: server)))
            url = "https://127.0.0.1:\(endpoint.localAddress!.port!)"
        }

        var admin: Credential { get throws { try ca.issueCredential(for: .admin, namespaceURL: url) } }

        func client(_ credential: Credential) throws -> PeerClient {
            try PeerClient(baseURL: url, credential: credential, expectedServer: .identity(.namespace), group: group,
                           timeout: .seconds(10))
        }

        /// What `tsmp namespace register` does: key and CSR here, certificate from the service.
        func register(_ email: String, device: String) async throws -> Credential {
            let identity = try PeerIdentity.device("\(device).\(email)")
            let (key, csr) = try KeyMaterial.newKeyAndCSR(for: identity)
            let issued: IssuedCredential = try await client(try admin).call(
                "POST", "/v1/users", json: RegisterUserRequest(user: email, device: device, csr: csr))
            return Credential(identity: issued.identity, keyPEM: key, certificatePEM: issued.certificate, caPEM: issued.ca,
                              namespaceURL: url)
        }

        /// What `tsmp device introduce` does.
        func introduce(_ name: String, by introducer: Credential) async throws -> Credential {
            let did = try DeviceID(introducer.identity.name)
            let identity = try PeerIdentity.device("\(name).\(did.user)")
            let (key, csr) = try KeyMaterial.newKeyAndCSR(for: identity)
            let issued: IssuedCredential = try await client(introducer).call(
                "POST", "/v1/devices", json: IntroduceDeviceRequest(name: name, csr: csr))
            return Credential(identity: issued.identity, keyPEM: key, certificatePEM: issued.certificate, caPEM: issued.ca,
                              namespaceURL: url)
        }

        func proxy(_ name: String) async throws -> Credential {
            let identity = try PeerIdentity.proxy(name)
            let (key, csr) = try KeyMaterial.newKeyAndCSR(for: identity)
            let issued: IssuedCredential = try await client(try admin).call(
                "POST", "/v1/proxies", json: RegisterProxyRequest(name: name, csr: csr))
            return Credential(identity: issued.identity, keyPEM: key, certificatePEM: issued.certificate, caPEM: issued.ca,
                              namespaceURL: url)
        }

        func heartbeat(_ credential: Credential, address: String, known: Int64? = nil) async throws -> HeartbeatAnswer {
            try await client(credential).call("POST", "/v1/heartbeat", json: HeartbeatRequest(
                knownModificationMillis: known, locator: try Locator(address: address, agentPort: 7445)))
        }

        func advance(_ millis: Int64) { clock.advance(millis) }

        func stop() async {
            await endpoint.close()
            await store.close()
            try? await group.shutdownGracefully()
        }
    }

    /// A database for one test: SQLite in memory, or a fresh schema on the test PostgreSQL server
    /// (TSMP_TEST_POSTGRES_URL; scripts/test starts one). Without it the PostgreSQL suite is skipped, visibly.
    static let postgresURL = ProcessInfo.processInfo.environment["TSMP_TEST_POSTGRES_URL"]
    static func database(_ backend: String) -> String {
        guard backend == "postgresql", let base = postgresURL else { return "sqlite::memory:" }
        let schema = "api_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        return base + (base.contains("?") ? "&" : "?") + "schema=\(schema)"
    }

    @Suite("on SQLite")
    struct OnSQLite {
        @Test("register, introduce, heartbeat, list, resolve by DID and by UID, preferences, status, changes")
        func everyFunction() async throws { try await NamespaceAPITests.everyFunction(database("sqlite")) }
        @Test("who may do what: each refusal has a reason and changes nothing")
        func authorisation() async throws { try await NamespaceAPITests.authorisation(database("sqlite")) }
        @Test("special locators are refused under both policies, and nothing changes")
        func specialLocators() async throws { try await NamespaceAPITests.specialLocators(database("sqlite")) }
        @Test("a locator that is not the request's source is refused, unless unattributed locators are allowed")
        func attributedLocators() async throws { try await NamespaceAPITests.attributedLocators(database("sqlite")) }
        @Test("registration and introduction repeated with the same CSR answer the same; another key stays 409")
        func repeatedRegistration() async throws { try await NamespaceAPITests.repeatedRegistration(database("sqlite")) }
        @Test("device lifecycle: rename keeps the DID, renew issues a working certificate, a removed device stops working")
        func lifecycle() async throws { try await NamespaceAPITests.lifecycle(database("sqlite")) }
        @Test("lifecycle refusals: another user's device, a removed device's requests, the last device, a retired name; nothing changes")
        func lifecycleRefusals() async throws { try await NamespaceAPITests.lifecycleRefusals(database("sqlite")) }
        @Test("friends: a request reaches every device in heartbeats, one confirms, both hold each other, either removes")
        func contacts() async throws { try await NamespaceAPITests.contacts(database("sqlite")) }
        @Test("friend refusals: yourself, someone else's request, crossing requests, a stranger; nothing changes")
        func contactRefusals() async throws { try await NamespaceAPITests.contactRefusals(database("sqlite")) }
        @Test("scenarios: resolution by UID follows the chosen scenario, else the time window, else the plain ranking; busy skipped")
        func scenarios() async throws { try await NamespaceAPITests.scenarios(database("sqlite")) }
        @Test("scenario refusals: another user's device, an unknown one, bad names and windows; nothing changes")
        func scenarioRefusals() async throws { try await NamespaceAPITests.scenarioRefusals(database("sqlite")) }
    }

    @Suite("on PostgreSQL", .enabled(if: postgresURL != nil, "TSMP_TEST_POSTGRES_URL is not set (scripts/test starts a server)"))
    struct OnPostgreSQL {
        @Test("register, introduce, heartbeat, list, resolve by DID and by UID, preferences, status, changes")
        func everyFunction() async throws { try await NamespaceAPITests.everyFunction(database("postgresql")) }
        @Test("who may do what: each refusal has a reason and changes nothing")
        func authorisation() async throws { try await NamespaceAPITests.authorisation(database("postgresql")) }
        @Test("special locators are refused under both policies, and nothing changes")
        func specialLocators() async throws { try await NamespaceAPITests.specialLocators(database("postgresql")) }
        @Test("a locator that is not the request's source is refused, unless unattributed locators are allowed")
        func attributedLocators() async throws { try await NamespaceAPITests.attributedLocators(database("postgresql")) }
        @Test("registration and introduction repeated with the same CSR answer the same; another key stays 409")
        func repeatedRegistration() async throws { try await NamespaceAPITests.repeatedRegistration(database("postgresql")) }
        @Test("device lifecycle: rename keeps the DID, renew issues a working certificate, a removed device stops working")
        func lifecycle() async throws { try await NamespaceAPITests.lifecycle(database("postgresql")) }
        @Test("lifecycle refusals: another user's device, a removed device's requests, the last device, a retired name; nothing changes")
        func lifecycleRefusals() async throws { try await NamespaceAPITests.lifecycleRefusals(database("postgresql")) }
        @Test("friends: a request reaches every device in heartbeats, one confirms, both hold each other, either removes")
        func contacts() async throws { try await NamespaceAPITests.contacts(database("postgresql")) }
        @Test("friend refusals: yourself, someone else's request, crossing requests, a stranger; nothing changes")
        func contactRefusals() async throws { try await NamespaceAPITests.contactRefusals(database("postgresql")) }
        @Test("scenarios: resolution by UID follows the chosen scenario, else the time window, else the plain ranking; busy skipped")
        func scenarios() async throws { try await NamespaceAPITests.scenarios(database("postgresql")) }
        @Test("scenario refusals: another user's device, an unknown one, bad names and windows; nothing changes")
        func scenarioRefusals() async throws { try await NamespaceAPITests.scenarioRefusals(database("postgresql")) }
    }

    static func everyFunction(_ database: String) async throws {
        let ns = try await Service(database: database)
        let laptop = try await ns.register("bob@example.com", device: "laptop")
        #expect(laptop.identity.description == "device:laptop.bob@example.com")
        let phone = try await ns.introduce("phone", by: laptop)
        #expect(phone.identity.description == "device:phone.bob@example.com")
        let tablet = try await ns.introduce("tablet", by: phone)
        let gw = try await ns.proxy("gw1")

        // Heartbeats: online with locators; the answer syncs a device that is behind.
        let first = try await ns.heartbeat(laptop, address: "10.1.0.2")
        #expect(first.sync != nil)
        let upToDate = try await ns.heartbeat(laptop, address: "10.1.0.2", known: first.latestModificationMillis)
        #expect(upToDate.sync == nil)
        _ = try await ns.heartbeat(phone, address: "10.3.0.2")
        let behind = try await ns.heartbeat(laptop, address: "10.1.0.2", known: first.latestModificationMillis)
        #expect(behind.sync?.contains { $0.device.name == "phone" } == true)

        let list: DeviceList = try await ns.client(tablet).call("GET", "/v1/devices")
        #expect(list.devices.map(\.did.description) == ["laptop.bob@example.com", "phone.bob@example.com", "tablet.bob@example.com"])
        #expect(list.devices.first { $0.did.name == "tablet" }?.status == .offline)

        // SRR, as the proxy asks it.
        let proxy = try ns.client(gw)
        let phoneAt: Resolution = try await proxy.call("GET", "/v1/resolve", query: ["did": "phone.bob@example.com"])
        #expect(phoneAt.locator?.address == "10.3.0.2" && phoneAt.locator?.agentPort == 7445 && phoneAt.status == .online)

        // Preferences order the user's online devices; busy ones are left out.
        let ranked: DeviceList = try await ns.client(laptop).call("PUT", "/v1/preferences", json: PreferencesEdit(
            ranking: [try DeviceID("phone.bob@example.com"), try DeviceID("laptop.bob@example.com")], atMillis: ns.clock.now))
        #expect(ranked.preferences.map(\.name) == ["phone", "laptop"])
        var online: ResolutionList = try await proxy.call("GET", "/v1/resolve", query: ["uid": "bob@example.com"])
        #expect(online.devices.map(\.did.name) == ["phone", "laptop"])
        let busy: Resolution = try await ns.client(phone).call("PUT", "/v1/status", json: StatusEdit(status: .busy, atMillis: ns.clock.now + 1))
        #expect(busy.status == .busy)
        online = try await proxy.call("GET", "/v1/resolve", query: ["uid": "bob@example.com"])
        #expect(online.devices.map(\.did.name) == ["laptop"])

        // Mobility: a new locator, logged.
        let moved: Resolution = try await ns.client(laptop).call("PUT", "/v1/locator", json: try Locator(address: "10.4.0.2", agentPort: 7445))
        #expect(moved.locator?.address == "10.4.0.2")
        let changes: ChangeList = try await ns.client(laptop).call("GET", "/v1/changes", query: ["since": "\(first.latestModificationMillis)"])
        #expect(changes.changes.contains { $0.device.name == "laptop" && $0.change == .locator(try? Locator(address: "10.4.0.2", agentPort: 7445)) })

        // Heartbeats stop: offline after the missed ones (sweep).
        ns.advance(10_000)
        let swept = try await ns.service.sweep()
        #expect(Set(swept.map(\.name)) == ["laptop", "phone"])
        online = try await proxy.call("GET", "/v1/resolve", query: ["uid": "bob@example.com"])
        #expect(online.devices.isEmpty)
        await ns.stop()
    }

    static func authorisation(_ database: String) async throws {
        let ns = try await Service(database: database)
        let bob = try await ns.register("bob@example.com", device: "laptop")
        let alice = try await ns.register("alice@example.com", device: "laptop")
        let gw = try await ns.proxy("gw1")
        _ = try await ns.heartbeat(bob, address: "10.1.0.2")
        let before = try await ns.service.changes(of: try UserID("bob@example.com"), sinceMillis: nil)

        // Alice can't see or resolve bob's devices.
        await expectRefused(403, "not a device of alice@example.com") {
            let _: Resolution = try await ns.client(alice).call("GET", "/v1/resolve", query: ["did": "laptop.bob@example.com"])
        }
        await expectRefused(403, "you may resolve only alice@example.com") {
            let _: ResolutionList = try await ns.client(alice).call("GET", "/v1/resolve", query: ["uid": "bob@example.com"])
        }
        // Which device is at an address is for a proxy to ask (then to have its agent prove it):
        // a device may not learn where other users' devices are.
        await expectRefused(403, "only a proxy resolves an address") {
            let _: Resolution = try await ns.client(alice).call("GET", "/v1/resolve", query: ["address": "10.1.0.2"])
        }
        let at: Resolution = try await ns.client(gw).call("GET", "/v1/resolve", query: ["address": "10.1.0.2"])
        #expect(at.did.description == "laptop.bob@example.com" && at.locator?.address == "10.1.0.2")
        await expectRefused(404, "no device's locator is 10.1.0.99") {
            let _: Resolution = try await ns.client(gw).call("GET", "/v1/resolve", query: ["address": "10.1.0.99"])
        }
        await expectRefused(400, "not an IPv4 or IPv6 address") {
            let _: Resolution = try await ns.client(gw).call("GET", "/v1/resolve", query: ["address": "laptop"])
        }
        // Alice can't rank bob's devices.
        await expectRefused(403, "may rank only alice@example.com's devices") {
            let _: DeviceList = try await ns.client(alice).call("PUT", "/v1/preferences", json: PreferencesEdit(
                ranking: [try DeviceID("laptop.bob@example.com")], atMillis: 1))
        }
        // Only the admin registers users and proxies.
        for speaker in [bob, gw] {
            await expectRefused(403, "only the namespace's admin registers users") {
                let (_, csr) = try KeyMaterial.newKeyAndCSR(for: try .device("laptop.eve@example.com"))
                let _: IssuedCredential = try await ns.client(speaker).call(
                    "POST", "/v1/users", json: RegisterUserRequest(user: "eve@example.com", device: "laptop", csr: csr))
            }
        }
        // Only devices heartbeat; a proxy or the admin can't pose as one.
        for speaker in [gw, try ns.admin] {
            await expectRefused(403, "only devices may do this") {
                _ = try await ns.heartbeat(speaker, address: "10.9.9.9")
            }
        }
        // Bad input: a duplicate user, a bad name, a bad CSR, a malformed body.
        await expectRefused(409, "registered already") { _ = try await ns.register("bob@example.com", device: "tablet") }
        await expectRefused(400, "") {
            let (_, csr) = try KeyMaterial.newKeyAndCSR(for: try .device("tablet.bob@example.com"))
            let _: IssuedCredential = try await ns.client(bob).call(
                "POST", "/v1/devices", json: IntroduceDeviceRequest(name: "Not.A.Name", csr: csr))
        }
        await expectRefused(400, "certificate request refused") {
            let _: IssuedCredential = try await ns.client(bob).call(
                "POST", "/v1/devices", json: IntroduceDeviceRequest(name: "tablet", csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
        }
        let garbage = try await ns.client(bob).sendRaw("POST", "/v1/heartbeat", body: Array("{\"locator\": 12}".utf8))
        #expect(garbage.status == 400)
        #expect(String(decoding: garbage.body, as: UTF8.self).contains("malformed HeartbeatRequest"))
        // A CA-signed certificate for a device the namespace doesn't know is refused too.
        let ghost = try ns.ca.issueCredential(for: try .device("ghost.bob@example.com"), namespaceURL: ns.url)
        await expectRefused(403, "is not registered") { _ = try await ns.heartbeat(ghost, address: "10.1.0.9") }

        let after = try await ns.service.changes(of: try UserID("bob@example.com"), sinceMillis: nil)
        #expect(after == before)
        #expect(try await ns.service.devices(of: try UserID("bob@example.com")).map(\.did.name) == ["laptop"])
        #expect(try await ns.service.deviceExists(try DeviceID("laptop.eve@example.com")) == false)
        await ns.stop()
    }

    @Test("a restart of the service (same database, same CA) loses nothing: old credentials still work")
    func restart() async throws {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("tsmp-ns-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ca = try CertificateAuthority.loadOrCreate(directory: dir)
        let db = "sqlite:\(dir)/ns.db"
        let first = try await Service(database: db, ca: ca)
        let laptop = try await first.register("bob@example.com", device: "laptop")
        let phone = try await first.introduce("phone", by: laptop)
        _ = try await first.heartbeat(phone, address: "10.3.0.2")
        let before: DeviceList = try await first.client(laptop).call("GET", "/v1/devices")
        await first.stop()

        let second = try await Service(database: db, ca: try CertificateAuthority.loadOrCreate(directory: dir))
        var reissued = laptop
        reissued.namespaceURL = second.url
        let after: DeviceList = try await second.client(reissued).call("GET", "/v1/devices")
        #expect(after.devices == before.devices)
        #expect(after.latestModificationMillis == before.latestModificationMillis)
        await second.stop()
    }
}

@Suite("OpenAPI documents match the route tables")
struct OpenAPIRouteTests {
    @Test("openapi/namespace.yaml declares exactly the namespace service's routes")
    func namespace() async throws {
        let ns = try await NamespaceAPITests.Service()
        let routes = NamespaceRoutes(service: ns.service, authority: ns.ca, namespaceURL: "", clock: { 0 }).routes
        #expect(Set(routes.keys) == (try OpenAPIDocument.operations("namespace.yaml")))
        await ns.stop()
    }

    @Test("openapi/agent.yaml declares exactly the agent's routes")
    func agent() throws {
        let ca = try CertificateAuthority.create()
        let phone = try ca.issueCredential(for: try .device("phone.bob@example.com"), namespaceURL: "https://127.0.0.1:1")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let agent = try Agent(options: .init(credential: phone, proxyHost: "127.0.0.1", proxyPort: 1, listenHost: "127.0.0.1",
                                             listenPort: 0, handoff: .exec("true"), insecureLab: false),
                              group: group, logger: Logger(label: "test"))
        #expect(Set(agent.routes.keys) == (try OpenAPIDocument.operations("agent.yaml")))
    }
}
