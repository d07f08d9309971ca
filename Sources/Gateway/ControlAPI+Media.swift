import ControlPlane
import Foundation
import Media
import Wire

/// `POST /v1/media/migrations`: `tsmp migrate --flow mN --to-addr ADDR` for a media session.
public struct MediaMigrationRequestBody: Codable, Sendable {
    public var session: MediaSessionID
    public var toAddress: IPAddress
    public var deadlineSeconds: Double
    public init(session: MediaSessionID, toAddress: IPAddress, deadlineSeconds: Double) {
        self.session = session; self.toAddress = toAddress; self.deadlineSeconds = deadlineSeconds
    }
}

/// `GET /v1/media`: the relayed sessions and the relay's counters.
public struct MediaListing: Codable, Sendable {
    public var sessions: [MediaSessionSummary]
    public var counters: MediaRelayCounters
    public init(sessions: [MediaSessionSummary], counters: MediaRelayCounters) { self.sessions = sessions; self.counters = counters }
}

/// `GET /v1/media/migrations?id=mN`: the latest migration of a session, running or finished.
public struct MediaMigrationStatus: Codable, Sendable {
    public var session: MediaSessionID
    public var report: MediaMigrationReport
    public var finished: Bool
}

extension ControlAPI {
    /// What a media route answers when the proxy relays no media.
    static let noMediaRelay = HTTPEndpoint.Response.error(.notFound, "this proxy relays no media (start it with --intercept rtsp/PORT)")

    /// The media relay's routes (SMP draft §5); with no relay, each answers 404 with the reason.
    public static func mediaRoutes(_ media: MediaRelayService?, reachability: DeviceReachability) -> [String: HTTPEndpoint.Handler] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let none = noMediaRelay
        return [
            "GET /v1/media": { _ in
                guard let media else { return none }
                return json(encoder, MediaListing(sessions: media.summaries(), counters: media.counters()))
            },
            "POST /v1/media/migrations": { request in
                guard let media else { return none }
                let body: MediaMigrationRequestBody
                do { body = try JSONDecoder().decode(MediaMigrationRequestBody.self, from: Data(request.body)) } catch {
                    return .error(.badRequest, "malformed media migration request: \(error)")
                }
                guard body.deadlineSeconds > 0 && body.deadlineSeconds <= 600 else {
                    return .error(.badRequest, "deadline must be within (0, 600] seconds")
                }
                if let why = reachability.problem(reaching: body.toAddress) {
                    return .error(.unprocessableEntity, "cannot migrate to \(body.toAddress): \(why)")
                }
                if let refusal = media.migrate(body.session, to: body.toAddress, deadlineSeconds: body.deadlineSeconds) {
                    return .error(.conflict, refusal)
                }
                return json(encoder, ["session": body.session.description, "phase": MediaMigrationPhase.requested.rawValue])
            },
            "GET /v1/media/migrations": { request in
                guard let media else { return none }
                guard let id = request.query["id"].flatMap({ MediaSessionID($0) }) else { return .error(.badRequest, "give ?id=mN") }
                guard let report = media.report(id) else { return .error(.notFound, "no migration of \(id)") }
                return json(encoder, MediaMigrationStatus(session: id, report: report,
                                                          finished: report.phase == .done || report.phase == .rolledBack))
            },
        ]
    }
}
