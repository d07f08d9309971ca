import ControlPlane
import Engine
import Foundation
import Gateway
import Logging
import Namespace
import Testing
import TestSupport
import Wire

/// Flow ownership is what the proxy observed, never a locator a device claimed (issue
/// "Control-plane security", finding 1). The attacks first: bob's laptop claims alice's address
/// as its locator (here written straight into the namespace service, as a namespace that does
/// not check locators would have stored it) and then lists, moves and pulls from there.
@Suite("Device API: flow ownership from what the proxy observes")
struct DeviceOwnershipTests {
    typealias Lab = DeviceAPITests.Lab

    static let bobLaptop = "laptop.bob@example.com", bobPhone = "phone.bob@example.com"
    static let aliceLaptop = "laptop.alice@example.com"

    @Test("bob claiming alice's address as his locator can't list, move or pull her flow; the engine is untouched")
    func claimedLocatorIsNoOwnership() async throws {
        let lab = try await Lab()
        let bob = try await lab.device(Self.bobLaptop)
        let phone = try await lab.device(Self.bobPhone, introducer: Self.bobLaptop)
        let alice = try await lab.device(Self.aliceLaptop)
        // Alice downloads from 127.0.0.4, where her agent runs.
        let (aliceAgent, alicePort) = try await lab.agent(alice, on: "127.0.0.4")
        try await lab.online(Self.aliceLaptop, address: "127.0.0.4", agentPort: alicePort)
        lab.engine.add(8, device: "127.0.0.4:40001", original: "127.0.0.1:9")
        // Bob's laptop really is at 127.0.0.2 but claims alice's address and agent port.
        try await lab.online(Self.bobLaptop, address: "127.0.0.4", agentPort: alicePort)
        try await lab.online(Self.bobPhone, address: "127.0.0.3", agentPort: 1)
        let asBob = try lab.proxyClient(bob, from: "127.0.0.2"), asPhone = try lab.proxyClient(phone, from: "127.0.0.3")

        let listed: DeviceFlows = try await asBob.call("GET", "/v1/device/flows")
        #expect(listed.address == "127.0.0.2")
        #expect(listed.flows.isEmpty)
        let toPhone = try DeviceID(Self.bobPhone), fromLaptop = try DeviceID(Self.bobLaptop)
        await expectRefused(403, "flow 8 is not one of laptop.bob@example.com's flows") {
            let _: MigrationFromAnswer = try await asBob.call("POST", "/v1/mfr", json: MigrationFromRequest(
                flows: [8], all: nil, to: toPhone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(404, "holds no established flow") {
            let _: MigrationFromAnswer = try await asBob.call("POST", "/v1/mfr", json: MigrationFromRequest(
                flows: nil, all: true, to: toPhone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        await expectRefused(404, "has no flow from its port 40001") {
            let _: MigrationFromAnswer = try await asBob.call("POST", "/v1/mfr", json: MigrationFromRequest(
                localPorts: [40001], to: toPhone, retrieveFrom: nil, deadlineSeconds: nil))
        }
        // The phone pulls "the laptop's" flows: the proxy asks the agent at the claimed locator,
        // which is alice's and proves to be alice.
        await expectRefused(409, "cannot verify where laptop.bob@example.com is") {
            let _: MigrationFromAnswer = try await asPhone.call("POST", "/v1/mfr", json: MigrationFromRequest(
                flows: nil, all: true, to: nil, retrieveFrom: fromLaptop, deadlineSeconds: nil))
        }
        await expectRefused(409, "cannot verify where laptop.bob@example.com is") {
            let _: DeviceFlows = try await asPhone.call("GET", "/v1/device/flows", query: ["device": Self.bobLaptop])
        }
        // The same with nothing listening at the claimed locator.
        try await lab.online(Self.bobLaptop, address: "127.0.0.4", agentPort: 9)
        await expectRefused(409, "cannot verify where laptop.bob@example.com is") {
            let _: MigrationFromAnswer = try await asPhone.call("POST", "/v1/mfr", json: MigrationFromRequest(
                flows: [8], all: nil, to: nil, retrieveFrom: fromLaptop, deadlineSeconds: nil))
        }
        #expect(lab.engine.state.withLock { $0.started.isEmpty })
        // Alice still lists her flow (bob's claim did not make her address ambiguous).
        let hers: DeviceFlows = try await lab.proxyClient(alice, from: "127.0.0.4").call("GET", "/v1/device/flows")
        #expect(hers.flows.map(\.id) == [FlowID(8)])
        aliceAgent.shutdown()
        await lab.stop()
    }

    @Test("a device whose agent proves itself at its locator can be pulled from")
    func provenDeviceCanBePulledFrom() async throws {
        let lab = try await Lab()
        let laptop = try await lab.device(Self.bobLaptop)
        let phone = try await lab.device(Self.bobPhone, introducer: Self.bobLaptop)
        let (phoneAgent, phonePort) = try await lab.agent(phone, on: "127.0.0.3")
        try await lab.online(Self.bobPhone, address: "127.0.0.3", agentPort: phonePort)
        try await lab.online(Self.bobLaptop, address: "127.0.0.2", agentPort: 9)
        lab.engine.add(5, device: "127.0.0.3:40005", original: "127.0.0.1:9")
        lab.engine.add(6, device: "127.0.0.2:40006", original: "127.0.0.1:9")

        let listed: DeviceFlows = try await lab.proxyClient(laptop, from: "127.0.0.2")
            .call("GET", "/v1/device/flows", query: ["device": Self.bobPhone])
        #expect(listed.address == "127.0.0.3")
        #expect(listed.flows.map(\.id) == [FlowID(5)])
        let answer: MigrationFromAnswer = try await lab.proxyClient(laptop, from: "127.0.0.2").call("POST", "/v1/mfr", json: MigrationFromRequest(
            flows: nil, all: true, to: nil, retrieveFrom: try DeviceID(Self.bobPhone), deadlineSeconds: 1))
        #expect(answer.results.map(\.flow) == [5])
        #expect(lab.engine.state.withLock { s in s.started.map(\.0) } == [FlowID(5)])
        #expect(lab.engine.state.withLock { s in s.started.first?.1.address } == .v4(IPv4Address(127, 0, 0, 2)))
        phoneAgent.shutdown()
        await lab.stop()
    }

    @Test("two devices seen at one address own nothing there: refused with the reason; the one that moves on is freed")
    func twoDevicesBehindOneAddress() async throws {
        let lab = try await Lab()
        let bob = try await lab.device(Self.bobLaptop)
        let alice = try await lab.device(Self.aliceLaptop)
        lab.engine.add(8, device: "127.0.0.5:40001", original: "127.0.0.1:9")
        let first: DeviceFlows = try await lab.proxyClient(alice, from: "127.0.0.5").call("GET", "/v1/device/flows")
        #expect(first.flows.map(\.id) == [FlowID(8)])
        // Bob now speaks from the same address (both behind one NAT): neither may act there.
        await expectRefused(409, "were both seen at 127.0.0.5") {
            let _: DeviceFlows = try await lab.proxyClient(bob, from: "127.0.0.5").call("GET", "/v1/device/flows")
        }
        await expectRefused(409, "were both seen at 127.0.0.5") {
            let _: DeviceFlows = try await lab.proxyClient(alice, from: "127.0.0.5").call("GET", "/v1/device/flows")
        }
        await expectRefused(409, "can't tell whose flows") {
            let _: MigrationFromAnswer = try await lab.proxyClient(bob, from: "127.0.0.5").call("POST", "/v1/mfr", json: MigrationFromRequest(
                flows: [8], all: nil, to: try DeviceID(Self.bobPhone), retrieveFrom: nil, deadlineSeconds: nil))
        }
        // Bob is seen elsewhere: the address is alice's alone again.
        let bobs: DeviceFlows = try await lab.proxyClient(bob, from: "127.0.0.6").call("GET", "/v1/device/flows")
        #expect(bobs.flows.isEmpty)
        let again: DeviceFlows = try await lab.proxyClient(alice, from: "127.0.0.5").call("GET", "/v1/device/flows")
        #expect(again.flows.map(\.id) == [FlowID(8)])
        #expect(lab.engine.state.withLock { $0.started.isEmpty })
        await lab.stop()
    }
}

@Suite("Device sightings")
struct DeviceSightingsTests {
    let a = try! DeviceID("laptop.alice@example.com"), b = try! DeviceID("laptop.bob@example.com")

    @Test("a device is where it was seen last; a second device at its address makes it ambiguous until the window passes")
    func ambiguity() {
        var s = DeviceSightings(ambiguityWindowMillis: 1000)
        #expect(s.ownedAddress(of: a, now: 0) == .success(nil))
        s.saw(a, at: "10.1.0.2", now: 0)
        #expect(s.ownedAddress(of: a, now: 0) == .success("10.1.0.2"))
        s.saw(b, at: "10.1.0.2", now: 500)
        #expect(s.ownedAddress(of: a, now: 500) == .failure(.init(address: "10.1.0.2", devices: [a, b])))
        // Bob's sighting (at 500) is still within alice's window at 1400.
        #expect(s.ownedAddress(of: a, now: 1400) != .success("10.1.0.2"))
        // Alice seen again later; bob's sighting ages out of the window.
        s.saw(a, at: "10.1.0.2", now: 1600)
        #expect(s.ownedAddress(of: a, now: 1600) == .success("10.1.0.2"))
        #expect(s.ownedAddress(of: b, now: 1600) == .failure(.init(address: "10.1.0.2", devices: [b, a])))
        // Bob moves: alice's address is hers alone at once.
        s.saw(b, at: "10.3.0.2", now: 1700)
        #expect(s.ownedAddress(of: b, now: 1700) == .success("10.3.0.2"))
        #expect(s.ownedAddress(of: a, now: 1700) == .success("10.1.0.2"))
    }

    @Test("at most capacity devices are remembered; the oldest go first")
    func capacity() throws {
        var s = DeviceSightings(ambiguityWindowMillis: 1000, capacity: 8)
        for i in 0..<20 { s.saw(try DeviceID("d\(i).bob@example.com"), at: "10.0.0.\(i)", now: Int64(i)) }
        #expect(s.count <= 8)
        #expect(s.sighting(of: try DeviceID("d19.bob@example.com"), now: 19, maxAgeMillis: 10) != nil)
        #expect(s.sighting(of: try DeviceID("d0.bob@example.com"), now: 19, maxAgeMillis: 100) == nil)
    }
}
