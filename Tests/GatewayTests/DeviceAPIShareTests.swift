import ControlPlane
import Foundation
import Gateway
import Logging
import Namespace
import Testing
import TestSupport

/// The Video Sharing Request at the proxy (issue 16, item 4; SMP draft §5.1): only friends may
/// share with a user, a user always with its own devices; by UID the best device by the ranking
/// in force gets it (anycast), or the N best, or all; each agent's hook decides and the sharer
/// gets every answer.
extension DeviceAPITests {
    /// An agent whose --on-share hook is `hook`, at `address`, online in the namespace.
    static func sharingAgent(_ lab: Lab, _ credential: Credential, _ did: String, at address: String, hook: String?) async throws {
        let agent = try Agent(options: .init(credential: credential, proxyHost: "127.0.0.1", proxyPort: 9, listenHost: address,
                                             listenPort: 0, handoff: .exec("cat >/dev/null"), insecureLab: false, onShare: hook),
                              group: lab.group, logger: Logger(label: "test"))
        let endpoint = try await HTTPEndpoint.start(host: address, port: 0, group: lab.group, logger: Logger(label: "test"),
                                                    routes: agent.routes, security: .mutualTLS(try ServerTLS(credential: credential)))
        lab.endpoints.withLock { $0.append(endpoint) }
        try await lab.online(did, address: address, agentPort: UInt16(endpoint.localAddress?.port ?? 0))
    }

    @Test("VSR: friends only; anycast to the best device by the ranking, broadcast to all, a DID to one; each hook's answer comes back")
    func share() async throws {
        let lab = try await Lab()
        let alice = try await lab.device("laptop.alice@example.com")
        let carol = try await lab.device("laptop.carol@example.com")
        let bobLaptop = try await lab.device("laptop.bob@example.com")
        _ = try await lab.device("phone.bob@example.com", introducer: "laptop.bob@example.com")
        let bobPhone = try lab.ca.issueCredential(for: try .device("phone.bob@example.com"), namespaceURL: lab.namespaceURL)
        let seen = (lab.dir as NSString).appendingPathComponent("phone-saw")
        try await Self.sharingAgent(lab, bobPhone, "phone.bob@example.com", at: "127.0.0.3",
                                    hook: "printf '%s %s' \"$TSMP_SHARE_FROM\" \"$TSMP_SHARE_URL\" > '\(seen)'; sleep 5 & exit 0")
        try await Self.sharingAgent(lab, bobLaptop, "laptop.bob@example.com", at: "127.0.0.2", hook: "exit 3")
        try await lab.online("laptop.alice@example.com", address: "127.0.0.4", agentPort: nil)
        let aliceUID = try UserID("alice@example.com"), bobUID = try UserID("bob@example.com")
        let url = "http://127.0.0.9:8080/clip.mp4"
        func share(_ c: Credential, from: String, _ r: VideoShareRequest) async throws -> VideoShareAnswer {
            try await lab.proxyClient(c, from: from).call("POST", "/v1/vsr", json: r)
        }

        // Not friends yet: refused with the reason; nothing offered.
        await expectRefused(403, "only friends may share with bob@example.com") {
            _ = try await share(alice, from: "127.0.0.4", VideoShareRequest(toUser: bobUID, url: url))
        }
        await expectRefused(403, "only friends may share") {
            _ = try await share(alice, from: "127.0.0.4", VideoShareRequest(toDevice: try DeviceID("phone.bob@example.com"), url: url))
        }
        #expect(!FileManager.default.fileExists(atPath: seen))
        let asked = try await lab.service.requestContact(bobUID, by: try DeviceID("laptop.alice@example.com"), name: "Bob")
        _ = try await lab.service.acceptContact(asked.id, by: try DeviceID("phone.bob@example.com"), name: "Alice")

        // Bob's ranking names the phone first: anycast reaches it, its hook accepts with the URL.
        try await lab.service.setPreferences(by: try DeviceID("laptop.bob@example.com"),
                                             ranking: [try DeviceID("phone.bob@example.com"), try DeviceID("laptop.bob@example.com")],
                                             atMillis: Int64(Date().timeIntervalSince1970 * 1000))
        // The hook leaves its "player" (sleep 5) running: the answer does not wait for it.
        let clock = ContinuousClock(), sharedAt = clock.now
        let anycast = try await share(alice, from: "127.0.0.4", VideoShareRequest(toUser: bobUID, url: url))
        #expect(clock.now - sharedAt < .seconds(3))
        #expect(anycast.targets == [ShareTargetAnswer(device: try DeviceID("phone.bob@example.com"), accepted: true, reason: nil)])
        #expect(try String(contentsOfFile: seen, encoding: .utf8) == "laptop.alice@example.com \(url)")
        // Broadcast: both, each with its own answer (the laptop's hook declines).
        let all = try await share(alice, from: "127.0.0.4", VideoShareRequest(toUser: bobUID, url: url, mode: .broadcast))
        #expect(all.targets.map(\.device.name) == ["phone", "laptop"])
        #expect(all.targets.map(\.accepted) == [true, false])
        #expect(all.targets.last?.reason?.contains("declined (its hook exited with 3)") == true)
        // A DID: that device only.
        let one = try await share(alice, from: "127.0.0.4", VideoShareRequest(toDevice: try DeviceID("laptop.bob@example.com"), url: url))
        #expect(one.targets.map(\.device.name) == ["laptop"] && one.targets.first?.accepted == false)
        // A user shares with its own devices without being its own friend.
        let own = try await share(bobLaptop, from: "127.0.0.2", VideoShareRequest(toUser: bobUID, url: url))
        #expect(own.targets.first?.device.name == "phone" && own.targets.first?.accepted == true)
        // Carol is nobody's friend; bad requests are 400.
        await expectRefused(403, "only friends may share with bob@example.com") {
            _ = try await share(carol, from: "127.0.0.5", VideoShareRequest(toUser: bobUID, url: url))
        }
        for bad in [VideoShareRequest(toUser: bobUID, url: "file:///etc/passwd"), VideoShareRequest(toUser: bobUID, url: "http://x/ y"),
                    VideoShareRequest(url: url), VideoShareRequest(toUser: bobUID, toDevice: try DeviceID("phone.bob@example.com"), url: url),
                    VideoShareRequest(toUser: bobUID, url: url, mode: .anycast, count: 3)] {
            await expectRefused(400, "") { _ = try await share(alice, from: "127.0.0.4", bad) }
        }
        // Bob ends the friendship: alice can't share any more.
        try await lab.service.removeContact(aliceUID, by: try DeviceID("laptop.bob@example.com"))
        await expectRefused(403, "only friends may share") {
            _ = try await share(alice, from: "127.0.0.4", VideoShareRequest(toUser: bobUID, url: url))
        }
        await lab.stop()
    }
}
