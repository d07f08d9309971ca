import ControlPlane
import Foundation
import Namespace

/// The Video Sharing Request at the proxy (SMP draft §5.1, openapi/proxy-devices.yaml): the
/// proxy resolves the target through the namespace (SRR; a user's devices best first by the
/// ranking in force, offline, busy and away ones left out), forwards the share to each target's
/// agent at its locator (mutual TLS: the agent must prove it is that device), and answers the
/// sharer with every target's verdict. The namespace refuses the resolution unless the sharer
/// and the target user are friends (each holds the other as a contact) or the same user.
extension DeviceAPI {
    /// Multicast without a count: this many devices.
    static let defaultMulticastCount = 2
    /// Never more targets than this for one share.
    static let maximumShareTargets = 64

    func share(from sharer: DeviceID, _ request: HTTPEndpoint.Request) async throws -> VideoShareAnswer {
        let vsr = try Self.decode(VideoShareRequest.self, request)
        let url = try VideoShareRequest.checkedURL(vsr.url).absoluteString
        let mode = vsr.mode ?? .anycast
        if mode != .multicast, vsr.count != nil { throw RouteRefusal(.badRequest, "count is for multicast only") }
        let count = vsr.count ?? Self.defaultMulticastCount
        guard (1...Self.maximumShareTargets).contains(count) else {
            throw RouteRefusal(.badRequest, "count must be within 1...\(Self.maximumShareTargets)")
        }
        let candidates: [Resolution]
        switch (vsr.toUser, vsr.toDevice) {
        case (let user?, nil):
            let list: ResolutionList = try await namespaceResolve(["uid": user.email, "for": sharer.description], what: "\(user)")
            candidates = list.devices
            guard !candidates.isEmpty else {
                throw RouteRefusal(.conflict, "\(user) has no online device (offline, busy and away devices take no shares)")
            }
        case (nil, let device?):
            let one: Resolution = try await namespaceResolve(["did": device.description, "for": sharer.description], what: "\(device)")
            guard one.status == .online else { throw RouteRefusal(.conflict, "\(device) is \(one.status.rawValue): only an online device takes shares") }
            candidates = [one]
        default:
            throw RouteRefusal(.badRequest, "give exactly one of \"toUser\" (a UID) and \"toDevice\" (a DID)")
        }
        var answers: [ShareTargetAnswer] = []
        switch mode {
        case .anycast:
            // The best device that answers: one that can't be reached hands over to the next.
            for target in candidates.prefix(Self.maximumShareTargets) {
                let answer = await offer(url, mode: mode, from: sharer, to: target)
                answers.append(answer.answer)
                if answer.reached { break }
            }
        case .multicast, .broadcast:
            let targets = Array(candidates.prefix(mode == .multicast ? count : Self.maximumShareTargets))
            answers = await withTaskGroup(of: (Int, ShareTargetAnswer).self) { group in
                for (index, target) in targets.enumerated() {
                    group.addTask { (index, await self.offer(url, mode: mode, from: sharer, to: target).answer) }
                }
                var collected: [(Int, ShareTargetAnswer)] = []
                for await answer in group { collected.append(answer) }
                return collected.sorted { $0.0 < $1.0 }.map(\.1)
            }
        }
        logger.info("VSR answered", metadata: [
            "by": "\(sharer)", "mode": "\(mode.rawValue)", "url": "\(url)",
            "accepted": "\(answers.filter(\.accepted).map(\.device.description).joined(separator: ","))",
            "tried": "\(answers.count)",
        ])
        return VideoShareAnswer(mode: mode, targets: answers)
    }

    /// The share to one target's agent; `reached`: the agent answered (accepted or declined).
    private func offer(_ url: String, mode: ShareMode, from sharer: DeviceID, to target: Resolution) async
        -> (answer: ShareTargetAnswer, reached: Bool) {
        guard let locator = target.locator, let port = locator.agentPort else {
            return (ShareTargetAnswer(device: target.did, accepted: false, reason: "no agent address in the namespace"), false)
        }
        let agentAt = agentURL(locator.address, port)
        do {
            let agent = try PeerClient(baseURL: agentAt, credential: options.credential, insecureLab: options.insecureLab,
                                       expectedServer: .identity(try .device(target.did.description)), group: group,
                                       timeout: .seconds(25))  // the agent's hook has 20 s (Agent.shareHookTimeout)
            let verdict: ShareVerdict = try await agent.call(
                "POST", "/v1/vsr", json: ShareOffer(from: sharer, to: target.did, url: url, mode: mode))
            return (ShareTargetAnswer(device: target.did, accepted: verdict.accepted, reason: verdict.reason), true)
        } catch {
            logger.notice("share not delivered", metadata: ["to": "\(target.did)", "agent": "\(agentAt)", "error": "\(error)"])
            return (ShareTargetAnswer(device: target.did, accepted: false, reason: "not reached at \(agentAt): \(error)"), false)
        }
    }

    /// SRR on behalf of the sharer: the namespace checks the friendship (403 with its reason).
    private func namespaceResolve<T: Decodable>(_ query: [String: String], what: String) async throws -> T {
        do {
            return try await namespace.call("GET", "/v1/resolve", query: query)
        } catch let e as PeerClientError {
            if case .refused(let status, let reason) = e {
                switch status {
                case 403: throw RouteRefusal(.forbidden, reason)
                case 404: throw RouteRefusal(.notFound, reason)
                case 400: throw RouteRefusal(.badRequest, reason)
                default: break
                }
            }
            throw RouteRefusal(.badGateway, "the namespace could not resolve \(what): \(e)")
        }
    }
}
