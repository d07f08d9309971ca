import ControlPlane
import Dispatch
import Engine
import Forwarding
import Foundation
import Gateway
import GatewayHost
import Logging
import NIOPosix
import PacketIO
import Testing
import TestSupport
import Wire

/// The proxy's local control API over real loopback HTTP, with the real data-plane thread
/// under it and an in-memory device instead of the TUN (no root needed): listings, migration
/// requests, and every kind of bad request refused with a reason and nothing changed.
@Suite("Control API on loopback", .serialized)
struct ControlAPITests {
    /// A data plane holding one flow (its SYN was queued before the loop started), and the
    /// control endpoint on an ephemeral loopback port.
    final class Proxy: @unchecked Sendable {
        let dataPlane: ShardedDataPlane
        let endpoint: HTTPEndpoint
        let group: MultiThreadedEventLoopGroup
        let client: ControlClient
        let directory: String

        init() async throws {
            let input = MemoryDevice()
            input.enqueue(tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:8080", flags: .syn, seq: 1000,
                               options: [.maximumSegmentSize(1460)]))
            dataPlane = try ShardedDataPlane(config: EngineConfig(nat: IPv4Address(10, 2, 0, 1), intercepts: [PortRange(8080, 8080)]),
                                             queues: [(input, MemoryDevice())], logger: Logger(label: "test"))
            dataPlane.start()
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let routes = ControlAPI.routes(engine: dataPlane).merging(
                ControlAPI.migrationRoutes(engine: dataPlane, reachability: Self.reachability),
                uniquingKeysWith: { a, _ in a })
            directory = NSTemporaryDirectory() + "tsmp-control-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = LocalControlSocket.defaultPath(tun: "tsmp0", stateDirectory: directory)
            endpoint = try await HTTPEndpoint.startLocal(path: path, allowedUIDs: LocalControlSocket.allowedUIDs, group: group,
                                                         logger: Logger(label: "test"), routes: routes)
            client = ControlClient(socketPath: try ControlClient.discover(in: directory))
        }

        /// A gateway with the phone's network on a device interface and a default route via the uplink
        /// (/proc/net/route's format: little-endian hex addresses).
        static let reachability = DeviceReachability(deviceInterfaces: ["gw-phone"], routeTable: """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            gw-srv\t00000000\t0100020A\t0003\t0\t0\t0\t00000000\t0\t0\t0
            gw-phone\t0000030A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
            gw-srv\t0000020A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
            """)

        func stop() async {
            await endpoint.close()
            dataPlane.stop()
            await dataPlane.waitUntilStopped()
            try? await group.shutdownGracefully()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// Runs a blocking client call on a Dispatch thread: on the concurrency pool (two
        /// threads on two cores) it would starve the server's own handler tasks.
        func call<T: Sendable>(_ body: @escaping @Sendable (ControlClient) throws -> T) async throws -> T {
            let client = self.client
            return try await withCheckedThrowingContinuation { c in
                DispatchQueue.global().async { c.resume(with: Result { try body(client) }) }
            }
        }

        /// The listing, once the loop has read the queued SYN (it polls every 100 ms).
        func listing() async throws -> FlowListing {
            for _ in 0..<50 {
                let l = try await call { try $0.get("/v1/flows", as: FlowListing.self) }
                if !l.flows.isEmpty { return l }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try await call { try $0.get("/v1/flows", as: FlowListing.self) }
        }
    }

    @Test("GET /v1/flows lists the flow with both endpoints, state and counters")
    func listsFlows() async throws {
        let proxy = try await Proxy()
        let listing = try await proxy.listing()
        await proxy.stop()
        let flow = try #require(listing.flows.first)
        #expect(flow.device == IPEndpoint("10.1.0.2:40000"))
        #expect(flow.original == IPEndpoint("10.2.0.2:8080"))
        #expect(flow.nat == IPEndpoint("10.2.0.1:61000"))
        #expect(flow.state == .synSent)
        #expect(listing.status.flows == 1 && listing.status.packetsForwarded == 1)
    }

    @Test("a migration of an unknown or not-established flow is refused per flow, with the reason")
    func migrationRefusals() async throws {
        let proxy = try await Proxy()
        let id = try await proxy.listing().flows[0].id
        let results = try await proxy.call {
            try $0.post("/v1/migrations", json: MigrationRequestBody(flows: [FlowID(99), id], toAddress: .v4(IPv4Address(10, 3, 0, 2)),
                                                                     fromPort: nil, deadlineSeconds: 5),
                        as: [MigrationStartResult].self)
        }
        let after = try await proxy.listing()
        await proxy.stop()
        #expect(results.count == 2)
        #expect(results[0].migration == nil && results[0].error == "flow 99 does not exist")
        #expect(results[1].migration == nil && results[1].error?.contains("syn-sent") == true)
        #expect(after.flows.first?.migration == nil && after.flows.first?.state == .synSent)
    }

    /// A bad request and how it must be answered.
    struct BadRequest: CustomTestStringConvertible, Sendable {
        let name: String
        let method: String
        let path: String
        let body: @Sendable () -> [UInt8]
        let status: Int
        let reason: String
        var testDescription: String { name }
    }

    static let badRequestCases: [BadRequest] = [
        BadRequest(name: "not JSON", method: "POST", path: "/v1/migrations", body: { Array("{not json".utf8) },
                   status: 400, reason: "malformed migration request"),
        BadRequest(name: "no flows", method: "POST", path: "/v1/migrations",
                   body: { Array(#"{"flows":[],"toAddress":"10.3.0.2","deadlineSeconds":5}"#.utf8) }, status: 400, reason: "no flows given"),
        BadRequest(name: "zero deadline", method: "POST", path: "/v1/migrations",
                   body: { Array(#"{"flows":[1],"toAddress":"10.3.0.2","deadlineSeconds":0}"#.utf8) }, status: 400, reason: "deadline"),
        BadRequest(name: "target behind the uplink", method: "POST", path: "/v1/migrations",
                   body: { Array(#"{"flows":[1],"toAddress":"10.77.0.1","deadlineSeconds":5}"#.utf8) }, status: 422,
                   reason: "10.77.0.1 is reached through gw-srv, not through a device interface"),
        BadRequest(name: "oversized body", method: "POST", path: "/v1/migrations",
                   body: { [UInt8](repeating: 0x20, count: HTTPEndpoint.maxBodyBytes + 1) }, status: 413, reason: "larger than"),
        BadRequest(name: "unknown path", method: "GET", path: "/v1/nothing", body: { [] }, status: 404, reason: "no such endpoint"),
        BadRequest(name: "wrong method", method: "DELETE", path: "/v1/flows", body: { [] }, status: 405, reason: "not allowed"),
    ]

    @Test("bad requests get a 4xx with a one-line reason and change nothing", arguments: badRequestCases)
    func badRequests(_ bad: BadRequest) async throws {
        let proxy = try await Proxy()
        let before = try await proxy.listing()
        let answer = try await proxy.call { try $0.request(bad.method, bad.path, body: bad.body()) }
        let after = try await proxy.listing()
        await proxy.stop()
        #expect(answer.status == bad.status)
        let text = String(decoding: answer.body, as: UTF8.self)
        #expect(text.contains(bad.reason), "\(text)")
        #expect(after.flows.map(\.id) == before.flows.map(\.id))
        #expect(after.flows.first?.migration == nil)
    }
}
