#if canImport(Glibc)
import Glibc
#endif
import ControlPlane
import Dispatch
import Foundation
import Gateway
import Logging
import Namespace
import NIOPosix

/// The figures of issue "Control-plane security" for `tsmp bench-control`: what the
/// per-request checks cost (request guard with per-peer limits, flow ownership from sightings),
/// each beside the same work without them in the same run, and what a 2,000-connection flood
/// does to a legitimate request's latency.
enum BenchSecurityFigures {
    typealias Figure = BenchControlCommand.Figure

    static func run(requests: Int, concurrency: Int, logger: Logger) async throws -> [Figure] {
        var figures: [Figure] = []
        figures += inProcessChecks(count: max(requests * 50, 100_000))
        figures += try await throughEndpoint(requests: requests, concurrency: concurrency, logger: logger)
        return figures
    }

    /// ns per call of each check, against a dictionary update of the same size (the work any
    /// replay cache does): 1,000 peers round-robin; 10,000 devices seen.
    static func inProcessChecks(count: Int) -> [Figure] {
        let peers = (0..<1000).map { try! PeerIdentity.device("d\($0).bench@example.com") }
        let ids = (0..<count).map { _ in RequestGuard.newRequestID() }
        var baselineCache: [String: Int64] = [:]
        let base = measure(count) { i in
            baselineCache["\(peers[i % peers.count]) \(ids[i])"] = Int64(i)
        }
        let open = RequestGuard(limits: .init(requestsPerSecond: 1_000_000_000, burst: 1_000_000_000, maxRemembered: 100_000_000))
        let lifted = measure(count) { i in
            _ = open.check(peer: peers[i % peers.count], requestID: ids[i], requestTime: String(RequestGuard.systemMilliseconds()))
        }
        let limited = RequestGuard()
        let ids2 = (0..<count).map { _ in RequestGuard.newRequestID() }
        let checked = measure(count) { i in
            _ = limited.check(peer: peers[i % peers.count], requestID: ids2[i], requestTime: String(RequestGuard.systemMilliseconds()))
        }
        var sightings = DeviceSightings()
        let devices = (0..<10_000).map { try! DeviceID("d\($0).bench@example.com") }
        let addresses = (0..<10_000).map { "10.\($0 >> 8 & 255).\($0 & 255).2" }
        var plain: [DeviceID: String] = [:]
        let plainMap = measure(count) { i in plain[devices[i % devices.count]] = addresses[i % addresses.count] }
        let owned = measure(count) { i in
            let d = i % devices.count
            sightings.saw(devices[d], at: addresses[d], now: Int64(i))
            _ = sightings.ownedAddress(of: devices[d], now: Int64(i))
        }
        let baseFigure = nanoFigure("in-process: a dictionary insert (baseline for the two below)", base)
        let mapFigure = nanoFigure("in-process: a DID -> address map update (baseline)", plainMap)
        return [
            baseFigure,
            nanoFigure("in-process: request guard, limits lifted (1,000 peers)", lifted, baseline: baseFigure),
            nanoFigure("in-process: request guard, per-peer limits (defaults)", checked, baseline: baseFigure),
            mapFigure,
            nanoFigure("in-process: ownership: sighting + attribution (10,000 devices)", owned, baseline: mapFigure),
        ]
    }

    /// GET /v1/whoami over mutual TLS with the guard's limits lifted and with the defaults, then
    /// the same request while 2,000 connections that never handshake are held open (from one
    /// address, where the per-address cap closes all but 64; and from 32 addresses, all held
    /// until the handshake deadline).
    static func throughEndpoint(requests: Int, concurrency: Int, logger: Logger) async throws -> [Figure] {
        _ = FileLimit.raise()
        let ca = try CertificateAuthority.create()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            let figures = try await measureEndpoint(ca: ca, group: group, requests: requests, concurrency: concurrency, logger: logger)
            try? await group.shutdownGracefully()
            return figures
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func measureEndpoint(ca: CertificateAuthority, group: MultiThreadedEventLoopGroup, requests: Int, concurrency: Int,
                                        logger: Logger) async throws -> [Figure] {
        let server = try ca.issueCredential(for: .namespace, namespaceURL: "")
        let routes: [String: HTTPEndpoint.Handler] = ["GET /v1/whoami": { request in
            guard let peer = request.peer else { return .error(.unauthorized, "no identity") }
            return .json(WhoAmI(identity: peer))
        }]
        func endpoint(_ requestGuard: RequestGuard) async throws -> (HTTPEndpoint, String) {
            let e = try await HTTPEndpoint.start(host: "127.0.0.1", port: 0, group: group, logger: logger, routes: routes,
                                                 security: .mutualTLS(try ServerTLS(credential: server)), requestGuard: requestGuard)
            return (e, "https://127.0.0.1:\(e.localAddress?.port ?? 0)")
        }
        // Each client its own device identity (as devices are), 8 of them.
        let clients = try (0..<8).map { try ca.issueCredential(for: try .device("d\($0).bench@example.com"), namespaceURL: "") }
        func load(_ url: String, _ n: Int) async throws -> [UInt64] {
            let links = try clients.map { try PeerClient(baseURL: url, credential: $0, expectedServer: .identity(.namespace), group: group) }
            return try await BenchControlCommand.parallel(count: n, width: concurrency) { i in
                let start = DispatchTime.now().uptimeNanoseconds
                let _: WhoAmI = try await links[i % links.count].call("GET", "/v1/whoami")
                return DispatchTime.now().uptimeNanoseconds - start
            }
        }
        var figures: [Figure] = []
        let (openEndpoint, openURL) = try await endpoint(RequestGuard(limits: .init(requestsPerSecond: 1_000_000, burst: 1_000_000)))
        var t = Date()
        let baseline = BenchControlCommand.figure("mTLS GET /v1/whoami, guard limits lifted (baseline)", count: requests, since: t,
                                                  latencies: try await load(openURL, requests))
        figures.append(baseline)
        await openEndpoint.close()
        let (guarded, url) = try await endpoint(RequestGuard())
        t = Date()
        let quiet = BenchControlCommand.figure("mTLS GET /v1/whoami, per-peer limits + deadlines + caps", count: requests, since: t,
                                               latencies: try await load(url, requests), baseline: baseline)
        figures.append(quiet)
        let port = UInt16(guarded.localAddress?.port ?? 0)
        for sources in [1, 32] {
            let flood = await openFlood(port: port, count: 2000, sources: sources)
            try await Task.sleep(for: .milliseconds(300))
            let held = guarded.openConnections()
            t = Date()
            let during = BenchControlCommand.figure(
                "  ... during a flood of 2,000 connections from \(sources) address\(sources == 1 ? "" : "es") (\(held) held open)",
                count: min(requests, 500), since: t, latencies: try await load(url, min(requests, 500)), baseline: quiet)
            figures.append(during)
            for fd in flood { close(fd) }
            for _ in 0..<100 where guarded.openConnections() > 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        await guarded.close()
        return figures
    }

    /// `count` TCP connections to 127.0.0.1:port from 127.0.0.2... (`sources` addresses) that
    /// send nothing (a TLS handshake never started). Blocking connects, on a Dispatch thread.
    static func openFlood(port: UInt16, count: Int, sources: Int) async -> [Int32] {
        await withCheckedContinuation { c in
            DispatchQueue.global().async {
                var fds: [Int32] = []
                for i in 0..<count {
                    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                    guard fd >= 0 else { break }
                    var local = sockaddr_in()
                    local.sin_family = sa_family_t(AF_INET)
                    local.sin_addr.s_addr = in_addr_t(0x7F00_0002 + UInt32(i % sources)).bigEndian
                    var remote = sockaddr_in()
                    remote.sin_family = sa_family_t(AF_INET)
                    remote.sin_port = port.bigEndian
                    remote.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
                    let ok = withUnsafePointer(to: &local) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    } == 0 && withUnsafePointer(to: &remote) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    } == 0
                    if ok { fds.append(fd) } else { close(fd) }
                }
                c.resume(returning: fds)
            }
        }
    }

    static func measure(_ count: Int, _ body: (Int) -> Void) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: count)
        for i in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            body(i)
            out[i] = DispatchTime.now().uptimeNanoseconds - start
        }
        return out
    }

    /// A figure from per-call nanoseconds (its p50/p99 fields hold milliseconds, as the others).
    static func nanoFigure(_ name: String, _ latencies: [UInt64], baseline: Figure? = nil) -> Figure {
        let total = Double(latencies.reduce(0, +)) / 1e9
        var f = Figure(name: name, count: latencies.count, seconds: total, perSecond: Double(latencies.count) / max(total, 1e-9))
        let sorted = latencies.sorted()
        f.p50Milliseconds = Double(sorted[sorted.count / 2]) / 1e6
        f.p99Milliseconds = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 1e6
        if let b = baseline?.p50Milliseconds, b > 0 { f.ratioToBaseline = f.p50Milliseconds! / b }
        return f
    }
}
