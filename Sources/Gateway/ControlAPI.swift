import ControlPlane
import Engine
import Forwarding
import Foundation
import PacketIO

/// The proxy's local control API (HTTP/JSON on `--control`, loopback by default):
/// - `GET /v1/flows`: every managed flow and the engine's status (`FlowListing`), with the
///   media relay's sessions (`media`, kind `rtsp`) when it runs.
/// - `GET /v1/media`, `POST|GET /v1/media/migrations` (`ControlAPI+Media.swift`): media sessions.
/// - `GET /v1/status`: the engine's counters and gauges.
/// - `GET /v1/events?after=CURSOR&wait=S`: flows and migration phases as they happen, a long poll (`EventBatch`).
/// - `GET /v1/migrations` (`MigrationAPI.swift`): running and recent migrations, or `?id=` their reports.
public enum ControlAPI {
    public static func routes(engine: any EngineAccess, media: MediaRelayService? = nil) -> [String: HTTPEndpoint.Handler] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [
            "GET /v1/flows": { _ in
                var listing = await engine.listing()
                listing.media = media?.summaries()
                return json(encoder, listing)
            },
            "GET /v1/status": { _ in
                json(encoder, await engine.engineStatus())
            },
            "GET /v1/migrations/timeline": { request in
                await timeline(request, engine: engine, encoder: encoder)
            },
            "GET /v1/events": { request in
                await events(request, engine: engine, encoder: encoder)
            },
        ]
    }

    static func json(_ encoder: JSONEncoder, _ value: some Encodable) -> HTTPEndpoint.Response {
        do {
            return HTTPEndpoint.Response(body: Array(try encoder.encode(value)) + [0x0A])
        } catch {
            return .error(.internalServerError, "cannot encode the answer: \(error)")
        }
    }
}
