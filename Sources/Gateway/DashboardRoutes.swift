import ControlPlane
import Engine
import Forwarding
import Foundation
import NIOHTTP1
import Wire

/// The proxy's read-only web dashboard, served beside `/metrics` on the metrics address
/// (`tsmp proxy --metrics`, loopback unless the operator says otherwise; issue 17):
/// - `GET /` and `GET /dashboard`: one self-contained page (`DashboardPage`: inline CSS and
///   script, nothing loaded from elsewhere) that polls the routes below every 2 s;
/// - `GET /v1/flows?limit=N`: the flows (at most N, newest first; 500 unless asked) and the
///   engine's status (`DashboardFlows`);
/// - `GET /v1/migrations?limit=N`: running and recent migrations (`MigrationListing`);
/// - `GET /v1/migrations/svg?id=N`: a migration's sequence-time graph (`MigrationSVG`);
/// - `GET /v1/media`: the media relay's sessions and counters (`MediaListing`, as on the
///   control socket), 404 with the reason when the proxy relays no media.
///
/// Invariants: every route is a GET and none changes anything (migrations are started only on
/// the root-only control socket, `ControlAPI.migrationRoutes`); a request whose `Host` is a
/// name other than `localhost` is refused (421), so a web page whose DNS name was rebound to
/// the proxy's address cannot read the flows through a browser.
public enum Dashboard {
    public static let defaultFlowLimit = 500
    public static let maximumFlowLimit = 10_000

    /// What the metrics address serves: `GET /metrics` and, with `dashboard` (the default;
    /// `tsmp proxy --no-dashboard` turns it off), the dashboard's routes beside it.
    public static func metricsAddressRoutes(metrics: @escaping HTTPEndpoint.Handler, dashboard: Bool,
                                            engine: any EngineAccess, media: MediaRelayService? = nil) -> [String: HTTPEndpoint.Handler] {
        (dashboard ? routes(engine: engine, media: media) : [:]).merging(["GET /metrics": metrics]) { _, metrics in metrics }
    }

    public static func routes(engine: any EngineAccess, media: MediaRelayService? = nil) -> [String: HTTPEndpoint.Handler] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let page: HTTPEndpoint.Handler = { _ in
            HTTPEndpoint.Response(contentType: "text/html; charset=utf-8", text: DashboardPage.html)
        }
        let routes: [String: HTTPEndpoint.Handler] = [
            "GET /": page,
            "GET /dashboard": page,
            "GET /v1/flows": { request in await flows(request, engine: engine, encoder: encoder) },
            "GET /v1/migrations": { request in await ControlAPI.migrationListing(request, engine: engine, encoder: encoder) },
            "GET /v1/migrations/svg": { request in await svg(request, engine: engine) },
            "GET /v1/media": { _ in
                guard let media else { return ControlAPI.noMediaRelay }
                return ControlAPI.json(encoder, MediaListing(sessions: media.summaries(), counters: media.counters()))
            },
        ]
        return routes.mapValues { handler in
            { request in
                if let refusal = hostRefusal(request.headers.first(name: "Host")) { return refusal }
                return await handler(request)
            }
        }
    }

    /// nil when `host` (the request's `Host` header, RFC 9110 §7.2) names the server by its
    /// IPv4 address or as localhost, with or without a port, or is absent (HTTP/1.0); otherwise
    /// the refusal. (The metrics address is IPv4: an IPv6 literal never names it.)
    static func hostRefusal(_ host: String?) -> HTTPEndpoint.Response? {
        guard let host else { return nil }
        var name = Substring(host)
        if let colon = name.lastIndex(of: ":") {
            let port = name[name.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }), UInt16(port) != nil else {
                return refusal(host)
            }
            name = name[..<colon]
        }
        if name.lowercased() == "localhost" || IPv4Address(name) != nil { return nil }
        return refusal(host)
    }

    private static func refusal(_ host: String) -> HTTPEndpoint.Response {
        .error(.misdirectedRequest, "the dashboard answers requests addressed to its IP address or localhost, not \"\(host.prefix(100))\"")
    }

    static func flows(_ request: HTTPEndpoint.Request, engine: any EngineAccess, encoder: JSONEncoder) async -> HTTPEndpoint.Response {
        var limit = defaultFlowLimit
        if let l = request.query["limit"] {
            guard let v = Int(l), v >= 0, v <= maximumFlowLimit else {
                return .error(.badRequest, "limit must be within [0, \(maximumFlowLimit)], not \"\(l.prefix(40))\"")
            }
            limit = v
        }
        let listing = await engine.listing()
        return ControlAPI.json(encoder, DashboardFlows(listing, limit: limit))
    }

    static func svg(_ request: HTTPEndpoint.Request, engine: any EngineAccess) async -> HTTPEndpoint.Response {
        guard let text = request.query["id"], let raw = UInt64(text) else {
            return .error(.badRequest, "give id=N, a migration id (tsmp migrations)")
        }
        let id = MigrationID(raw)
        guard let report = await engine.reports([id]).first else { return .error(.notFound, "migration \(id) is not known") }
        let timeline = await engine.timeline(id) ?? MigrationTimeline()
        return HTTPEndpoint.Response(contentType: "image/svg+xml; charset=utf-8", text: MigrationSVG.render(report, timeline))
    }
}

/// `GET /v1/flows` of the dashboard: the newest `limit` flows (by id), how many there are in
/// all, and the engine's status.
public struct DashboardFlows: Codable, Sendable {
    public var flows: [FlowSummary]
    public var total: Int
    public var status: EngineStatus

    public init(_ listing: FlowListing, limit: Int) {
        flows = Array(listing.flows.sorted { $0.id > $1.id }.prefix(max(0, limit)))
        total = listing.flows.count
        status = listing.status
    }
}
