import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Telemetry

/// The Prometheus metrics of a control-plane service (`tsmp namespace serve`, `tsmp agent`,
/// `--metrics ADDR:PORT`): requests per route by result, and named counts of what the service
/// is for (the namespace's heartbeats and resolutions, the agent's MTRs and heartbeats).
/// Counted under a lock: a few per request, not per packet.
public final class ServiceMetrics: Sendable {
    /// How a request or an attempt ended: `ok` (2xx), `refused` (4xx: the caller's mistake or
    /// no permission), `error` (5xx, or no answer).
    public enum Result: String, Sendable, CaseIterable {
        case ok, refused, error
        public init(status: Int) { self = (200..<300).contains(status) ? .ok : (400..<500).contains(status) ? .refused : .error }
    }

    /// A counter family and what it counts: requests to `route`, or `count(_:_:)` calls under its name.
    public struct Family: Sendable {
        public var name: String
        public var help: String
        public var route: String?
        public init(name: String, help: String, route: String? = nil) { self.name = name; self.help = help; self.route = route }
    }

    private let prefix: String
    private let families: [Family]
    private let counts = Mutex<[String: [Result: UInt64]]>([:])

    /// `prefix`: the metric names' start (`tsmp_namespace`); `families`: the named counters.
    public init(prefix: String, families: [Family]) {
        self.prefix = prefix
        self.families = families
    }

    /// Counts one outcome of a named family (or route).
    public func count(_ key: String, _ result: Result) {
        counts.withLock { $0[key, default: [:]][result, default: 0] &+= 1 }
    }

    /// The routes, each counting its answers by result.
    public func instrument(_ routes: [String: HTTPEndpoint.Handler]) -> [String: HTTPEndpoint.Handler] {
        routes.reduce(into: [:]) { out, route in
            let handler = route.value, key = route.key
            out[key] = { [self] request in
                let response = await handler(request)
                count(key, Result(status: Int(response.status.code)))
                return response
            }
        }
    }

    /// The exposition text: `PREFIX_requests_total{route,result}`, each family
    /// `PREFIX_NAME_total{result}`, and `tsmp_build_info`.
    public func render() -> String {
        let snapshot = counts.withLock { $0 }
        var out = PrometheusText()
        var requests: [(labels: PrometheusText.Labels, value: UInt64)] = []
        for (key, byResult) in snapshot.sorted(by: { $0.key < $1.key }) where key.contains(" /") {
            for r in Result.allCases { requests.append(([("route", key), ("result", r.rawValue)], byResult[r] ?? 0)) }
        }
        out.counter("\(prefix)_requests", help: "Requests answered, by route and result (ok 2xx, refused 4xx, error 5xx)", requests)
        for f in families {
            let byResult = snapshot[f.route ?? f.name] ?? [:]
            out.counter("\(prefix)_\(f.name)", help: f.help, Result.allCases.map { ([("result", $0.rawValue)], byResult[$0] ?? 0) })
        }
        out.gauge("tsmp_build_info", help: "The running tsmp: version and git commit (value 1)",
                  [(labels: [("version", BuildInfo.version), ("commit", BuildInfo.commit)], value: 1)])
        return out.text
    }

    /// The namespace service's: heartbeats and resolutions (SMP draft §6.2), by result.
    public static func namespace() -> ServiceMetrics {
        ServiceMetrics(prefix: "tsmp_namespace", families: [
            Family(name: "heartbeats", help: "Device heartbeats received, by result", route: "POST /v1/heartbeat"),
            Family(name: "resolutions", help: "Device resolutions answered (a proxy asking where a device is), by result", route: "GET /v1/resolve"),
        ])
    }

    /// The agent's: MTRs taken (the proxy asking this device to take a flow) and heartbeats sent.
    public static func agent() -> ServiceMetrics {
        ServiceMetrics(prefix: "tsmp_agent", families: [
            Family(name: "mtrs", help: "Migration transfer requests (MTR) received from the proxy, by result", route: "POST /v1/mtr"),
            Family(name: "mtr_connects", help: "MTR connects (the agent connecting to the proxy for a flow), by result", route: "POST /v1/mtr/connect"),
            Family(name: "heartbeats", help: "Heartbeats sent to the namespace, by result"),
        ])
    }
}

extension ServiceMetrics {
    /// Serves `GET /metrics` on `host:port` (plain HTTP; give a loopback address unless a
    /// scraper elsewhere must reach it).
    public func serve(host: String, port: Int, group: any EventLoopGroup, logger: Logger) async throws -> HTTPEndpoint {
        try await HTTPEndpoint.start(host: host, port: port, group: group, logger: logger, routes: [
            "GET /metrics": { [self] _ in HTTPEndpoint.Response(contentType: "text/plain; version=0.0.4", text: render()) },
        ])
    }
}
