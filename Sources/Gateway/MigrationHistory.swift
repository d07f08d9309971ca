import ControlPlane
import Engine
import Forwarding
import Foundation
import PacketIO

/// `GET /v1/migrations` without `id`: the running migrations and the recent finished ones
/// (each engine keeps its last 1000 reports; the listing shows at most `limit`, 256 unless
/// asked), what `tsmp migrations` prints.
public struct MigrationListing: Codable, Sendable, Equatable {
    public var migrations: [MigrationReport]
    /// Running ones among them (not finished).
    public var running: Int
    public init(migrations: [MigrationReport]) {
        self.migrations = migrations
        running = migrations.filter { !$0.isFinished }.count
    }
    public static let defaultLimit = 256
    public static let maximumLimit = 1000
}

extension ControlAPI {
    /// `GET /v1/events` (see `EventBatch`). `wait` is at most 30 seconds (10 unless given).
    static func events(_ request: HTTPEndpoint.Request, engine: any EngineAccess, encoder: JSONEncoder) async -> HTTPEndpoint.Response {
        let shards = await engine.eventCursorNow()
        let wait: Double
        if let w = request.query["wait"] {
            guard let v = Double(w), v >= 0, v <= 30 else { return .error(.badRequest, "wait must be within [0, 30] seconds, not \"\(w)\"") }
            wait = v
        } else {
            wait = 10
        }
        guard let after = request.query["after"] else {
            return json(encoder, EventBatch(events: [], cursor: EventCursor.format(shards), lost: 0))
        }
        let cursor: [UInt64]
        if after == "start" {
            cursor = Array(repeating: 0, count: shards.count)
        } else if let c = EventCursor.parse(after, shards: shards.count) {
            cursor = c
        } else {
            return .error(.badRequest, "after must be \"start\" or the cursor of the last answer (\(shards.count) numbers), not \"\(after)\"")
        }
        let until = Date().addingTimeInterval(wait)
        while true {
            let batch = await engine.events(after: cursor)
            if !batch.events.isEmpty || batch.lost > 0 || Date() >= until { return json(encoder, batch) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    static func migrationListing(_ request: HTTPEndpoint.Request, engine: any EngineAccess, encoder: JSONEncoder) async -> HTTPEndpoint.Response {
        var limit = MigrationListing.defaultLimit
        if let l = request.query["limit"] {
            guard let v = Int(l), v >= 0, v <= MigrationListing.maximumLimit else {
                return .error(.badRequest, "limit must be within [0, \(MigrationListing.maximumLimit)], not \"\(l)\"")
            }
            limit = v
        }
        return json(encoder, MigrationListing(migrations: await engine.migrationListing(limit: limit)))
    }
}
