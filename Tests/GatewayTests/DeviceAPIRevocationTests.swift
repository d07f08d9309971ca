import ControlPlane
import Foundation
import Gateway
import Namespace
import Testing
import TestSupport

/// Revocation at the proxy (issue 16, item 5): the proxy asks the namespace whether the caller
/// is still registered on every device request, so a removed device's MFR is refused from its
/// next request on, well within a second of the removal, and nothing starts.
extension DeviceAPITests {
    @Test("a removed device's MFR is refused at once with the namespace's reason; the engine is untouched")
    func removedDeviceMFR() async throws {
        let lab = try await Lab()
        let laptop = try await lab.device("laptop.bob@example.com")
        _ = try await lab.device("phone.bob@example.com", introducer: "laptop.bob@example.com")
        try await lab.online("laptop.bob@example.com", address: "127.0.0.2", agentPort: 1)
        try await lab.online("phone.bob@example.com", address: "127.0.0.3", agentPort: 1)
        lab.engine.add(7, device: "127.0.0.2:40000", original: "127.0.0.1:9")
        let asLaptop = try lab.proxyClient(laptop, from: "127.0.0.2")
        let phone = try DeviceID("phone.bob@example.com"), laptopID = try DeviceID("laptop.bob@example.com")
        let mfr = MigrationFromRequest(flows: [8], all: nil, to: phone, retrieveFrom: nil, deadlineSeconds: nil)

        // Registered: the request gets past the check (and is refused later, for the flow).
        await expectRefused(403, "flow 8 is not one of laptop.bob@example.com's flows") {
            let _: MigrationFromAnswer = try await asLaptop.call("POST", "/v1/mfr", json: mfr)
        }
        // What the check costs: a device request with it, on loopback mTLS (one SRR per request).
        let clock = ContinuousClock()
        let rounds = 20
        let started = clock.now
        for _ in 0..<rounds { let _: DeviceFlows = try await asLaptop.call("GET", "/v1/device/flows") }
        let mean = (clock.now - started) / rounds
        print("device request with the revocation check: \(Double(mean.components.attoseconds) / 1e15 + Double(mean.components.seconds) * 1000) ms mean over \(rounds)")

        // Removed by the phone: the laptop's very next MFR is refused with the reason.
        try await lab.service.remove(device: laptopID, by: phone)
        let removedAt = clock.now
        await expectRefused(403, "laptop.bob@example.com was removed from its group") {
            let _: MigrationFromAnswer = try await asLaptop.call(
                "POST", "/v1/mfr", json: MigrationFromRequest(flows: [7], all: nil, to: phone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        #expect(clock.now - removedAt < .seconds(1))
        await expectRefused(403, "was removed from its group") {
            let _: DeviceFlows = try await asLaptop.call("GET", "/v1/device/flows")
        }
        #expect(lab.engine.state.withLock { $0.started.isEmpty })
        await lab.stop()
    }
}
