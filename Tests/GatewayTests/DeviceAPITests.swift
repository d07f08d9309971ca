import ControlPlane
import Dispatch
import Engine
import Forwarding
import Foundation
import Gateway
import Logging
import Namespace
import NIOCore
import NIOPosix
import PacketIO
import Synchronization
import Testing
import TestSupport
import Wire

/// The proxy's device-facing API (MFR) on loopback with mutual TLS: a real namespace service,
/// a real agent taking the MTR and handing the connection to an --exec command, and an
/// `EngineAccess` that records what it was asked (the engine's own migration is tested in
/// EngineTests and end to end). Authorisation refusals must reach the engine not at all.
@Suite("Device API: MFR, MTR, authorisation")
struct DeviceAPITests {
    /// Flows as the engine would list them; migrations jump to the cut when started.
    final class RecordingEngine: EngineAccess, Sendable {
        struct State {
            var flows: [FlowSummary] = []
            var started: [(FlowID, MigrationTarget)] = []
            var reports: [MigrationID: MigrationReport] = [:]
            var bound: [MigrationID: UInt16] = [:]
        }
        let state = Mutex(State())

        func add(_ id: UInt64, device: String, original: String) {
            let summary = FlowSummary(
                id: FlowID(id), device: IPEndpoint(device)!, original: IPEndpoint(original)!,
                nat: IPEndpoint("10.2.0.1:62000")!, server: IPEndpoint(original)!, state: .established,
                packetsToServer: 1, bytesToServer: 0, packetsToDevice: 1, bytesToDevice: 100, inFlightBytes: 0,
                ageSeconds: 1, idleSeconds: 0, migration: nil, migrationPhase: nil)
            state.withLock { $0.flows.append(summary) }
        }

        func listing() async -> FlowListing {
            FlowListing(flows: state.withLock { $0.flows }, status: Self.status)
        }
        func engineStatus() async -> EngineStatus { Self.status }
        static let status = SpliceEngine(config: EngineConfig(nat: IPv4Address(10, 2, 0, 1), intercepts: [PortRange(9, 9)])).status()
        func startMigrations(_ flows: [FlowID], to target: MigrationTarget, deadline: Duration) async -> [MigrationStartResult] {
            state.withLock { s in
                flows.map { flow in
                    guard let summary = s.flows.first(where: { $0.id == flow }) else {
                        return MigrationStartResult(flow: flow, migration: nil, error: "flow \(flow) does not exist")
                    }
                    let mid = MigrationID(UInt64(s.started.count + 1))
                    s.started.append((flow, target))
                    s.reports[mid] = MigrationReport(
                        id: mid, flow: flow, oldDevice: summary.device, target: target, newDevice: nil, phase: .oldDeviceCut,
                        phases: [], cutOffsetToDevice: 1234, cutOffsetToServer: 56, bytesCached: 0, retransmissions: 0,
                        timeouts: 0, reason: nil)
                    return MigrationStartResult(flow: flow, migration: mid, error: nil)
                }
            }
        }
        func bindMigrationSourcePort(_ port: UInt16, to migration: MigrationID) async -> Result<Void, MigrationRefusal> {
            state.withLock { $0.bound[migration] = port; $0.reports[migration]?.target.port = port }
            return .success(())
        }
        func reports(_ ids: [MigrationID]) async -> [MigrationReport] {
            state.withLock { s in ids.compactMap { s.reports[$0] } }
        }
    }

    /// Namespace, proxy device endpoint and an agent for bob's phone, all on 127.0.0.1.
    final class Lab: Sendable {
        let ca: CertificateAuthority
        let group: MultiThreadedEventLoopGroup
        let store: any NamespaceStore
        let service: NamespaceService
        let endpoints: Mutex<[HTTPEndpoint]> = Mutex([])
        let engine = RecordingEngine()
        let namespaceURL: String
        let proxyURL: String
        let dir: String

        init() async throws {
            ca = try CertificateAuthority.create()
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("tsmp-devapi-\(UUID().uuidString)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            store = try await NamespaceDatabase.open("sqlite::memory:", logger: Logger(label: "test"))
            let clock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
            service = NamespaceService(store: store, clock: clock)
            let routes = NamespaceRoutes(service: service, authority: ca, namespaceURL: "", clock: clock)
            let ns = try await HTTPEndpoint.start(
                host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test"), routes: routes.routes,
                security: .mutualTLS(try ServerTLS(credential: try ca.issueCredential(for: .namespace, namespaceURL: ""))))
            namespaceURL = "https://127.0.0.1:\(ns.localAddress!.port!)"
            try await service.registerProxy(name: "gw1")
            let gw = try ca.issueCredential(for: try .proxy("gw1"), namespaceURL: namespaceURL)
            let api = try DeviceAPI(engine: engine, options: .init(credential: gw, insecureLab: false),
                                    reachability: Self.loopbackIsADevice, group: group, logger: Logger(label: "test"))
            let proxy = try await HTTPEndpoint.start(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test"),
                                                     routes: api.routes, security: .mutualTLS(try ServerTLS(credential: gw)))
            proxyURL = "https://127.0.0.1:\(proxy.localAddress!.port!)"
            endpoints.withLock { $0 = [ns, proxy] }
        }

        /// The devices are all on loopback here: "lo" plays the device interface.
        static let loopbackIsADevice = DeviceReachability(deviceInterfaces: ["lo"], routeTable: """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0
            """)

        /// A registered device's credential (made directly in the service; the API path is in NamespaceAPITests).
        func device(_ did: String, first: Bool = false, introducer: String? = nil) async throws -> Credential {
            let id = try DeviceID(did)
            if let introducer {
                _ = try await service.introduce(device: id.name, by: try DeviceID(introducer))
            } else {
                _ = try await service.registerUser(id.user, firstDevice: id.name)
            }
            return try ca.issueCredential(for: try .device(did), namespaceURL: namespaceURL)
        }

        func online(_ did: String, address: String = "127.0.0.1", agentPort: UInt16?) async throws {
            _ = try await service.heartbeat(from: try DeviceID(did), knownModificationMillis: nil,
                                            locator: try Locator(address: address, agentPort: agentPort))
        }

        /// A client of the proxy's device API speaking from `source` (the proxy attributes the
        /// flows from that address to the caller).
        func proxyClient(_ credential: Credential, from source: String = "127.0.0.1") throws -> PeerClient {
            var client = try PeerClient(baseURL: proxyURL, credential: credential, expectedServer: .role(.proxy), group: group,
                                        timeout: .seconds(10))
            client.sourceAddress = try SocketAddress(ipAddress: source, port: 0)
            return client
        }

        /// An agent for `credential` listening on `address` (its MTR endpoint and identity proof).
        func agent(_ credential: Credential, on address: String) async throws -> (Agent, UInt16) {
            let agent = try Agent(options: .init(credential: credential, proxyHost: "127.0.0.1", proxyPort: 9, listenHost: address,
                                                 listenPort: 0, handoff: .exec("cat >/dev/null"), insecureLab: false),
                                  group: group, logger: Logger(label: "test"))
            let endpoint = try await HTTPEndpoint.start(host: address, port: 0, group: group, logger: Logger(label: "test"),
                                                        routes: agent.routes, security: .mutualTLS(try ServerTLS(credential: credential)))
            endpoints.withLock { $0.append(endpoint) }
            return (agent, UInt16(endpoint.localAddress?.port ?? 0))
        }

        func stop() async {
            for e in endpoints.withLock({ $0 }) { await e.close() }
            await store.close()
            try? await group.shutdownGracefully()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test("a device lists only its own flows; another user's flows and devices are refused, the engine untouched")
    func authorisation() async throws {
        let lab = try await Lab()
        let bob = try await lab.device("laptop.bob@example.com")
        _ = try await lab.device("phone.bob@example.com", introducer: "laptop.bob@example.com")
        let alice = try await lab.device("laptop.alice@example.com")
        try await lab.online("laptop.bob@example.com", address: "127.0.0.2", agentPort: 1)
        try await lab.online("phone.bob@example.com", address: "127.0.0.3", agentPort: 1)
        try await lab.online("laptop.alice@example.com", address: "127.0.0.4", agentPort: 1)
        lab.engine.add(7, device: "127.0.0.2:40000", original: "127.0.0.1:9")
        lab.engine.add(8, device: "127.0.0.4:40001", original: "127.0.0.1:9")

        let mine: DeviceFlows = try await lab.proxyClient(bob, from: "127.0.0.2").call("GET", "/v1/device/flows")
        #expect(mine.flows.map(\.id) == [FlowID(7)])
        #expect(mine.address == "127.0.0.2")
        let hers: DeviceFlows = try await lab.proxyClient(alice, from: "127.0.0.4").call("GET", "/v1/device/flows")
        #expect(hers.flows.map(\.id) == [FlowID(8)])

        let asAlice = try lab.proxyClient(alice, from: "127.0.0.4"), asBob = try lab.proxyClient(bob, from: "127.0.0.2")
        func mfr(_ c: PeerClient, _ r: MigrationFromRequest) async throws {
            let _: MigrationFromAnswer = try await c.call("POST", "/v1/mfr", json: r)
        }
        let bobLaptop = try DeviceID("laptop.bob@example.com"), bobPhone = try DeviceID("phone.bob@example.com")
        let aliceLaptop = try DeviceID("laptop.alice@example.com")
        await expectRefused(403, "flow 7 is not one of laptop.alice@example.com's flows") {
            try await mfr(asAlice, MigrationFromRequest(flows: [7], all: nil, to: aliceLaptop, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(403, "phone.bob@example.com is not a device of alice@example.com") {
            try await mfr(asAlice, MigrationFromRequest(flows: [7], all: nil, to: bobPhone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(403, "laptop.bob@example.com is not a device of alice@example.com") {
            try await mfr(asAlice, MigrationFromRequest(flows: nil, all: true, to: nil, retrieveFrom: bobLaptop, deadlineSeconds: nil))
        }
        await expectRefused(403, "laptop.alice@example.com is not a device of bob@example.com") {
            try await mfr(asBob, MigrationFromRequest(flows: [7], all: nil, to: aliceLaptop, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(403, "flow 8 is not one of laptop.bob@example.com's flows") {
            try await mfr(asBob, MigrationFromRequest(flows: [8], all: nil, to: bobPhone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(404, "laptop.bob@example.com has no flow from its port 40001") {
            try await mfr(asBob, MigrationFromRequest(localPorts: [40001], to: bobPhone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(400, "give one of") {
            try await mfr(asBob, MigrationFromRequest(flows: [7], localPorts: [40000], to: bobPhone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(400, "exactly one of") {
            try await mfr(asBob, MigrationFromRequest(flows: [7], all: nil, to: bobPhone, retrieveFrom: bobPhone, deadlineSeconds: nil))
        }
        await expectRefused(400, "deadlineSeconds") {
            try await mfr(asBob, MigrationFromRequest(flows: [7], all: nil, to: bobPhone, retrieveFrom: nil, deadlineSeconds: 0))
        }
        await expectRefused(403, "not started by") {
            let _: MigrationReports = try await asAlice.call("GET", "/v1/mfr", query: ["id": "1"])
        }
        // A proxy or admin credential is not a device.
        let admin = try lab.ca.issueCredential(for: .admin, namespaceURL: lab.namespaceURL)
        await expectRefused(403, "only devices talk to this endpoint") {
            let _: DeviceFlows = try await lab.proxyClient(admin, from: "127.0.0.9").call("GET", "/v1/device/flows")
        }
        #expect(lab.engine.state.withLock { $0.started.isEmpty })
        await lab.stop()
    }

    @Test("MFR to an offline device or one without an agent is refused; nothing starts")
    func unreachableTarget() async throws {
        let lab = try await Lab()
        let bob = try await lab.device("laptop.bob@example.com")
        _ = try await lab.device("phone.bob@example.com", introducer: "laptop.bob@example.com")
        try await lab.online("laptop.bob@example.com", address: "127.0.0.2", agentPort: 1)
        lab.engine.add(7, device: "127.0.0.2:40000", original: "127.0.0.1:9")
        let request = MigrationFromRequest(flows: nil, all: true, to: try DeviceID("phone.bob@example.com"), retrieveFrom: nil,
                                           deadlineSeconds: nil)
        await expectRefused(409, "phone.bob@example.com is offline") {
            let _: MigrationFromAnswer = try await lab.proxyClient(bob, from: "127.0.0.2").call("POST", "/v1/mfr", json: request)
        }
        try await lab.online("phone.bob@example.com", address: "127.0.0.3", agentPort: nil)
        await expectRefused(409, "no agent address") {
            let _: MigrationFromAnswer = try await lab.proxyClient(bob, from: "127.0.0.2").call("POST", "/v1/mfr", json: request)
        }
        #expect(lab.engine.state.withLock { $0.started.isEmpty })
        await lab.stop()
    }

    @Test("MFR by DID: the proxy resolves the phone, sends its agent the MTR, binds the port; the agent connects and --exec gets the stream and the details")
    func migrationToRequest() async throws {
        let lab = try await Lab()
        let laptop = try await lab.device("laptop.bob@example.com")
        let phone = try await lab.device("phone.bob@example.com", introducer: "laptop.bob@example.com")
        // The flow's destination: a listener on loopback that says hello to whoever connects.
        let server = try Syscall.boundTCPSocket(address: 0x7F00_0001)
        defer { try? Syscall.close(server.fd) }
        #expect(listen(server.fd, 4) == 0)
        let out = "\(lab.dir)/received"
        let agent = try Agent(options: .init(credential: phone, proxyHost: "127.0.0.1", proxyPort: 9, listenHost: "127.0.0.1",
                                             listenPort: 0,
                                             handoff: .exec("env | grep ^TSMP_ > \(out).env; cat > \(out).bin"),
                                             insecureLab: false),
                              group: lab.group, logger: Logger(label: "test"))
        let agentEndpoint = try await HTTPEndpoint.start(host: "127.0.0.1", port: 0, group: lab.group, logger: Logger(label: "test"),
                                                         routes: agent.routes, security: .mutualTLS(try ServerTLS(credential: phone)))
        lab.endpoints.withLock { $0.append(agentEndpoint) }
        try await lab.online("laptop.bob@example.com", address: "127.0.0.2", agentPort: 1)
        try await lab.online("phone.bob@example.com", address: "127.0.0.1", agentPort: UInt16(agentEndpoint.localAddress!.port!))
        lab.engine.add(7, device: "127.0.0.2:40000", original: "127.0.0.1:\(server.port)")

        // By the 4-tuple as the laptop sees it: its own source port.
        let answer: MigrationFromAnswer = try await lab.proxyClient(laptop, from: "127.0.0.2").call("POST", "/v1/mfr", json: MigrationFromRequest(
            localPorts: [40000], to: try DeviceID("phone.bob@example.com"), retrieveFrom: nil, deadlineSeconds: 5))
        #expect(answer.results == [MigrationFromResult(flow: 7, migration: 1, error: nil)])
        #expect(lab.engine.state.withLock { $0.started.first?.1 } == MigrationTarget(address: IPv4Address(127, 0, 0, 1), awaitsPort: true))

        // The agent connects from the port the proxy bound.
        // accept(2) blocks: on a Dispatch thread, not on the concurrency pool the endpoints' handlers need.
        let listener = server.fd
        let accepted = await withCheckedContinuation { c in DispatchQueue.global().async { c.resume(returning: accept(listener, nil, nil)) } }
        #expect(accepted >= 0)
        let peer = try Syscall.localEndpoint(accepted) // ours; the peer's port via getpeername:
        _ = peer
        var sin = sockaddr_in(), length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(accepted, $0, &length) } }
        let bound = lab.engine.state.withLock { $0.bound[MigrationID(1)] }
        #expect(bound == UInt16(bigEndian: sin.sin_port))
        try Syscall.writeAll(accepted, Array("the rest of the stream\n".utf8))
        try Syscall.close(accepted)
        for _ in 0..<100 where (try? String(contentsOfFile: "\(out).bin", encoding: .utf8)) != "the rest of the stream\n" {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try String(contentsOfFile: "\(out).bin", encoding: .utf8) == "the rest of the stream\n")
        let env = try String(contentsOfFile: "\(out).env", encoding: .utf8)
        for line in ["TSMP_MIGRATION_ID=1", "TSMP_FLOW_ID=7", "TSMP_FROM_DEVICE=laptop.bob@example.com",
                     "TSMP_TO_DEVICE=phone.bob@example.com", "TSMP_CUT_OFFSET_TO_DEVICE=1234", "TSMP_CUT_OFFSET_TO_SERVER=56",
                     "TSMP_DESTINATION=127.0.0.1:\(server.port)", "TSMP_SOURCE_PORT=\(bound ?? 0)"] {
            #expect(env.contains(line + "\n"), "\(line) missing from \(env)")
        }
        #expect(agent.transfersReceived == 1)
        // Bob follows the migration; alice can't.
        let reports: MigrationReports = try await lab.proxyClient(laptop, from: "127.0.0.2").call("GET", "/v1/mfr", query: ["id": "1"])
        #expect(reports.migrations.first?.target.port == bound)
        agent.shutdown()
        await lab.stop()
    }

    @Test("the agent takes MTRs only from proxies, only for itself")
    func agentRefusals() async throws {
        let lab = try await Lab()
        let laptop = try await lab.device("laptop.bob@example.com")
        let phone = try await lab.device("phone.bob@example.com", introducer: "laptop.bob@example.com")
        let agent = try Agent(options: .init(credential: phone, proxyHost: "127.0.0.1", proxyPort: 9, listenHost: "127.0.0.1",
                                             listenPort: 0, handoff: .exec("cat >/dev/null"), insecureLab: false),
                              group: lab.group, logger: Logger(label: "test"))
        let endpoint = try await HTTPEndpoint.start(host: "127.0.0.1", port: 0, group: lab.group, logger: Logger(label: "test"),
                                                    routes: agent.routes, security: .mutualTLS(try ServerTLS(credential: phone)))
        lab.endpoints.withLock { $0.append(endpoint) }
        let url = "https://127.0.0.1:\(endpoint.localAddress!.port!)"
        let gw = try lab.ca.issueCredential(for: try .proxy("gw1"), namespaceURL: lab.namespaceURL)
        func mtr(_ as: Credential, to: String, from: String = "laptop.bob@example.com", destination: String = "127.0.0.1:9") async throws {
            let client = try PeerClient(baseURL: url, credential: `as`, expectedServer: .identity(try .device("phone.bob@example.com")),
                                        group: lab.group)
            let _: MigrationToAnswer = try await client.call("POST", "/v1/mtr", json: MigrationToRequest(
                migration: 1, flow: 1, destination: destination, fromDevice: try DeviceID(from), toDevice: try DeviceID(to),
                cutOffsetToDevice: 0, cutOffsetToServer: 0))
        }
        await expectRefused(403, "only a proxy sends MTRs") { try await mtr(laptop, to: "phone.bob@example.com") }
        await expectRefused(400, "this agent is phone.bob@example.com") { try await mtr(gw, to: "tablet.bob@example.com") }
        await expectRefused(403, "not a device of bob@example.com") {
            try await mtr(gw, to: "phone.bob@example.com", from: "laptop.alice@example.com")
        }
        await expectRefused(400, "destination must be IPv4:PORT") {
            try await mtr(gw, to: "phone.bob@example.com", destination: "example.com:80")
        }
        await expectRefused(404, "no pending MTR") {
            let client = try PeerClient(baseURL: url, credential: gw, expectedServer: .identity(try .device("phone.bob@example.com")),
                                        group: lab.group)
            let _: Empty = try await client.call("POST", "/v1/mtr/connect", json: MigrationConnect(migration: 99))
        }
        #expect(agent.transfersReceived == 0)
        agent.shutdown()
        await lab.stop()
    }
}

@Suite("OpenAPI: the proxy's device API")
struct DeviceAPIDocumentTests {
    @Test("openapi/proxy-devices.yaml declares exactly the device API's routes")
    func routes() async throws {
        let lab = try await DeviceAPITests.Lab()
        let gw = try lab.ca.issueCredential(for: try .proxy("gw1"), namespaceURL: lab.namespaceURL)
        let api = try DeviceAPI(engine: lab.engine, options: .init(credential: gw, insecureLab: false),
                                reachability: DeviceAPITests.Lab.loopbackIsADevice, group: lab.group, logger: Logger(label: "test"))
        #expect(Set(api.routes.keys) == (try OpenAPIDocument.operations("proxy-devices.yaml")))
        await lab.stop()
    }
}
