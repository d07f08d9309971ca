import ControlPlane
import Foundation
import Media
import Namespace
import Wire

/// Media sessions through the device API (SMP draft §5.2-§5.3): an MFR naming sessions moves
/// them to another device of the user (its agent's `--exec` opens the URL; the relay answers
/// that player from the cache); a quality alert of the relay goes to the owning device's agent,
/// whose hook confirms (or not) the move to the user's next preferred online device.
///
/// Ownership is what the proxy observed: a device owns the sessions whose player is at the
/// address where the proxy saw that device (`DeviceSightings`), as for flows.
extension DeviceAPI {
    func migrateMedia(_ names: [String], owner: DeviceID, target: DeviceID, caller: Caller, deadline: Duration) async throws -> MigrationFromAnswer {
        guard let media else { throw RouteRefusal(.notFound, "this proxy relays no media (it runs without --intercept rtsp/PORT)") }
        guard !names.isEmpty, names.count <= 16 else { throw RouteRefusal(.badRequest, "give 1 to 16 media sessions") }
        let ids = try names.map { name in
            guard let id = MediaSessionID(name) else { throw RouteRefusal(.badRequest, "\"\(name)\" is not a media session (mN)") }
            return id
        }
        guard Set(ids).count == ids.count else { throw RouteRefusal(.badRequest, "a media session is listed twice") }
        guard owner != target else { throw RouteRefusal(.badRequest, "\(owner) already holds these sessions") }
        let (address, _) = try await heldFlows(of: owner, caller: caller)
        let held = Dictionary(uniqueKeysWithValues: media.summaries().filter { $0.device == address }.map { ($0.id, $0) })
        if let stranger = ids.first(where: { held[$0] == nil }) {
            throw RouteRefusal(.forbidden, "\(stranger) is not one of \(owner)'s media sessions")
        }
        let (locator, port, targetAddress) = try await onlineAgent(of: target)
        let seconds = Double(deadline.components.seconds) + Double(deadline.components.attoseconds) / 1e18
        var results: [MediaStartResult] = []
        for id in ids {
            if let refusal = media.migrate(id, to: targetAddress, deadlineSeconds: seconds) {
                results.append(MediaStartResult(session: id.description, error: refusal))
                continue
            }
            results.append(MediaStartResult(session: id.description, error: nil))
            mediaOwners.withLock { o in
                o[id] = caller.device.user
                if o.count > Self.ownersKept, let oldest = o.keys.min() { o[oldest] = nil }
            }
            logger.info("MFR accepted (media)", metadata: ["session": "\(id)", "by": "\(caller.device)", "from": "\(owner)", "to": "\(target)"])
            let offer = MediaTransferOffer(session: id.description, url: held[id]!.url, from: owner, to: target)
            let agentAt = agentURL(locator.address, port)
            Task { await self.sendMediaTransfer(offer, agent: agentAt, address: locator.address) }
        }
        return MigrationFromAnswer(target: target, results: [], media: results)
    }

    /// The media MTR: the target's agent starts its player on the URL. A failure is logged; the
    /// relay's deadline then rolls the session back to its player.
    private func sendMediaTransfer(_ offer: MediaTransferOffer, agent agentAt: String, address: String) async {
        do {
            let agent = try PeerClient(baseURL: agentAt, credential: options.credential, insecureLab: options.insecureLab,
                                       expectedServer: .identity(try .device(offer.to.description)), group: group)
            let verdict: ShareVerdict = try await agent.call("POST", "/v1/mtr/media", json: offer)
            saw(offer.to, at: address)
            logger.info("media MTR sent", metadata: ["session": "\(offer.session)", "to": "\(offer.to)", "accepted": "\(verdict.accepted)",
                                                     "reason": "\(verdict.reason ?? "")"])
        } catch {
            logger.warning("media MTR failed; the session rolls back at its deadline", metadata: [
                "session": "\(offer.session)", "to": "\(offer.to)", "agent": "\(agentAt)", "error": "\(error)",
            ])
        }
    }

    /// `GET /v1/mfr/media?session=mN`: the latest migration of a session the caller's user moved.
    func mediaReport(_ request: HTTPEndpoint.Request, caller: Caller) throws -> MediaMigrationStatus {
        guard let media else { throw RouteRefusal(.notFound, "this proxy relays no media") }
        guard let id = request.query["session"].flatMap({ MediaSessionID($0) }) else { throw RouteRefusal(.badRequest, "give ?session=mN") }
        guard mediaOwners.withLock({ $0[id] }) == caller.device.user else {
            throw RouteRefusal(.forbidden, "\(id)'s migration was not started by \(caller.device.user)")
        }
        guard let report = media.report(id) else { throw RouteRefusal(.notFound, "no migration of \(id)") }
        return MediaMigrationStatus(session: id, report: report, finished: report.phase == .done || report.phase == .rolledBack)
    }

    /// A session's loss stayed above the threshold (SMP §5.2): its owner's agent decides.
    public func qualityAlert(_ id: MediaSessionID, _ alert: QualityAlert) async {
        guard let media, let session = media.summaries().first(where: { $0.id == id }) else { return }
        if sightings.withLock({ $0.owner(at: session.device, now: nowMillis()) }) == nil {
            // Nobody seen there yet: the namespace says whose locator it is; its agent must prove it.
            if let found: Resolution = try? await namespace.call("GET", "/v1/resolve", query: ["address": session.device]) {
                try? await proveWhereabouts(of: found.did)
            }
        }
        guard let owner = sightings.withLock({ $0.owner(at: session.device, now: nowMillis()) }) else {
            logger.notice("media session degraded; no device is known at its address to ask", metadata: [
                "session": "\(id)", "device": "\(session.device)", "fraction_lost": "\(alert.fractionLost)",
            ])
            return
        }
        do {
            let resolution = try await resolve(owner)
            guard let locator = resolution.locator, let port = locator.agentPort else { return }
            let list: ResolutionList = try await namespace.call("GET", "/v1/resolve", query: ["uid": owner.user.email, "for": owner.description])
            let next = list.devices.first { $0.did != owner && $0.status == .online }?.did
            let agent = try PeerClient(baseURL: agentURL(locator.address, port), credential: options.credential,
                                       insecureLab: options.insecureLab, expectedServer: .identity(try .device(owner.description)),
                                       group: group, timeout: .seconds(40))
            let notice = QualityNotice(session: id.description, url: session.url, fractionLost: alert.fractionLost,
                                       peakFractionLost: alert.peakFractionLost, next: next, owner: owner)
            let verdict: QualityVerdict = try await agent.call("POST", "/v1/quality", json: notice)
            logger.notice("media quality alert answered", metadata: [
                "session": "\(id)", "owner": "\(owner)", "next": "\(next.map { "\($0)" } ?? "-")",
                "fraction_lost": "\(alert.fractionLost)", "confirmed": "\(verdict.confirmed)", "reason": "\(verdict.reason ?? "")",
            ])
        } catch {
            logger.warning("media quality alert not delivered", metadata: ["session": "\(id)", "owner": "\(owner)", "error": "\(error)"])
        }
    }
}
