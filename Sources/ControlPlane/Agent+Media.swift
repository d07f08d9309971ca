import Foundation
import Namespace

/// The agent's side of media sessions (SMP draft §5.2-§5.3):
/// - `POST /v1/mtr/media`: a session moves here; `--exec` runs in the background with
///   `TSMP_MEDIA_URL`, `TSMP_MEDIA_SESSION`, `TSMP_MEDIA_FROM` (stdin /dev/null): it starts the
///   player on that URL, which the proxy answers from the session's cache.
/// - `POST /v1/quality`: this device's session lost too much; `--on-quality` decides with
///   `TSMP_MEDIA_SESSION`, `TSMP_MEDIA_URL`, `TSMP_MEDIA_LOSS` (the fraction lost, 0-1) and
///   `TSMP_NEXT_DEVICE` (the user's next preferred online device); exit status 0 confirms, and
///   the agent sends the proxy the MFR that moves the session there.
/// Only a proxy may send either, only about this device.
extension Agent {
    /// How long a player may keep running after the transfer (it is not waited for).
    static let playerLifetime: Duration = .seconds(86_400)

    func mediaTransfer(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .proxy else { return .error(.forbidden, "only a proxy transfers media sessions (you are \(peer))") }
        return await Self.answering(status: .ok) { [self] in
            let offer = try Self.decode(MediaTransferOffer.self, request)
            guard offer.to == did else { throw RouteRefusal(.badRequest, "this agent is \(did), not \(offer.to)") }
            guard offer.url.lowercased().hasPrefix("rtsp://"), offer.url.utf8.count <= 2048,
                  !offer.url.contains(where: { $0.isNewline }) else {
                throw RouteRefusal(.badRequest, "not an rtsp:// URL")
            }
            guard case .exec(let command) = options.handoff else {
                return ShareVerdict(accepted: false, reason: "\(did)'s agent forwards TCP (--forward): it runs no player")
            }
            let environment = ["TSMP_MEDIA_URL": offer.url, "TSMP_MEDIA_SESSION": offer.session, "TSMP_MEDIA_FROM": offer.from.description]
            Task.detached { [logger] in
                let status = await Self.runHook(command, environment: environment, timeout: Self.playerLifetime)
                logger.info("media player ended", metadata: ["session": "\(offer.session)", "status": "\(status.map(String.init) ?? "signal")"])
            }
            logger.info("media session transferred here", metadata: ["session": "\(offer.session)", "from": "\(offer.from)", "url": "\(offer.url)"])
            return ShareVerdict(accepted: true, reason: nil)
        }
    }

    func quality(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .proxy else { return .error(.forbidden, "only a proxy reports a session's quality (you are \(peer))") }
        return await Self.answering(status: .ok) { [self] in
            let notice = try Self.decode(QualityNotice.self, request)
            guard notice.owner == did else { throw RouteRefusal(.badRequest, "this agent is \(did), not \(notice.owner)") }
            guard let hook = options.onQuality else {
                logger.notice("media session degraded; no --on-quality hook to confirm a move", metadata: [
                    "session": "\(notice.session)", "fraction_lost": "\(notice.fractionLost)",
                ])
                return QualityVerdict(confirmed: false, reason: "\(did) confirms no network-triggered migration (no --on-quality)")
            }
            guard let next = notice.next else {
                return QualityVerdict(confirmed: false, reason: "\(did)'s user has no other online device")
            }
            let status = await Self.runHook(hook, environment: [
                "TSMP_MEDIA_SESSION": notice.session, "TSMP_MEDIA_URL": notice.url,
                "TSMP_MEDIA_LOSS": String(format: "%.3f", notice.fractionLost), "TSMP_NEXT_DEVICE": next.description,
            ], timeout: Self.shareHookTimeout)
            logger.info("media session degraded", metadata: [
                "session": "\(notice.session)", "fraction_lost": "\(notice.fractionLost)", "next": "\(next)",
                "hook.status": "\(status.map(String.init) ?? "timeout")",
            ])
            guard status == 0 else {
                return QualityVerdict(confirmed: false, reason: "\(did)'s hook declined (\(status.map { "exit \($0)" } ?? "no answer in time"))")
            }
            // The owner confirmed: the MFR, as `tsmp migrate --to NEXT --flow mN` would send it.
            let proxy = try PeerClient(baseURL: proxyURL, credential: options.credential, insecureLab: options.insecureLab,
                                       expectedServer: .role(.proxy), group: transportGroup)
            let answer: MediaMFRAnswer = try await proxy.call("POST", "/v1/mfr", json: MigrationFromRequest(
                to: next, retrieveFrom: nil, deadlineSeconds: nil, mediaSessions: [notice.session]))
            let refusal = answer.media?.first?.error
            return QualityVerdict(confirmed: refusal == nil, reason: refusal.map { "the proxy refused the move: \($0)" })
        }
    }

    /// The proxy's device-facing URL (`--proxy`; plain HTTP under `--insecure-lab`).
    var proxyURL: String { HostPort.url(options.proxyHost, Int(options.proxyPort), insecureLab: options.insecureLab) }
}

/// The part of an MFR's answer the agent reads after a confirmed quality notice.
struct MediaMFRAnswer: Codable, Sendable {
    var media: [MediaStartResult]?
}
