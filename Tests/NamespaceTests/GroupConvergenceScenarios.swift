import Foundation
@testable import Namespace
import Testing

/// The namespace group on each device (issue 16, item 2; SMP draft §6.2.3): edits from two
/// devices (carrying their own clocks, arriving late and out of order) and from the namespace
/// (expiry, a friend ending the friendship) end in the same group on every device, whatever
/// order and batches the entries reach it in, and the same as the namespace's own state:
/// devices with status and labels, contacts with their names, scenarios, the ranking in force.
enum GroupConvergenceScenarios {
    static func groupConverges(_ backend: Backend) async throws {
        try await NamespaceFixture.withService(backend) { fixture, service in
            let bob = try UserID("bob@example.com"), alice = try UserID("alice@example.com"), carol = try UserID("carol@example.com")
            let laptop = try DeviceID("laptop.bob@example.com"), phone = try DeviceID("phone.bob@example.com")
            let tablet = try DeviceID("tablet.bob@example.com")
            _ = try await service.registerUser(bob, firstDevice: "laptop")
            _ = try await service.introduce(device: "phone", by: laptop)
            _ = try await service.introduce(device: "tablet", by: laptop)
            _ = try await service.registerUser(alice, firstDevice: "laptop")
            _ = try await service.registerUser(carol, firstDevice: "laptop")
            for (user, name) in [(alice, "Alice"), (carol, "Carol")] {
                let asked = try await service.requestContact(bob, by: try DeviceID(name: "laptop", user: user), name: "Bob")
                _ = try await service.acceptContact(asked.id, by: phone, name: name)
            }
            // The laptop follows the group heartbeat by heartbeat; the phone syncs once at the end.
            var onLaptop = NamespaceReplica(user: bob)
            func laptopBeat() async throws {
                onLaptop.apply(try await service.heartbeat(from: laptop, knownModificationMillis: onLaptop.latestModificationMillis, locator: nil))
            }
            try await laptopBeat()
            _ = try await service.heartbeat(from: phone, knownModificationMillis: nil, locator: nil)
            let t0 = fixture.clock.millis

            // Concurrent edits: each device's clock, arriving in an order unlike their times.
            _ = try await service.rename(device: phone, to: "Bob's phone", by: laptop, atMillis: t0 + 100)
            _ = try await service.rename(device: phone, to: "phone (old)", by: phone, atMillis: t0 + 50)       // older: loses
            try await service.setStatus(of: phone, to: .busy, atMillis: t0 + 120)
            try await laptopBeat()
            try await service.setScenario("day", to: Scenario(ranking: [phone, laptop], window: nil), by: laptop, atMillis: t0 + 200)
            try await service.setScenario("day", to: Scenario(ranking: [laptop], window: nil), by: phone, atMillis: t0 + 150)  // older
            try await service.chooseScenario("day", by: phone, atMillis: t0 + 210)
            _ = try await service.renameContact(alice, to: "Alice W.", by: laptop, atMillis: t0 + 300)
            _ = try await service.renameContact(alice, to: "Ally", by: phone, atMillis: t0 + 250)              // older: loses
            try await laptopBeat()
            // The namespace's own edits: carol ends the friendship; the tablet expires.
            fixture.clock.advance(by: 1_000)
            try await service.removeContact(bob, by: try DeviceID("laptop.carol@example.com"))
            fixture.clock.advance(by: service.expiryMillis + 1)
            _ = try await service.heartbeat(from: laptop, knownModificationMillis: onLaptop.latestModificationMillis, locator: nil)
            _ = try await service.sweep()
            try await laptopBeat()
            var onPhone = NamespaceReplica(user: bob)
            onPhone.apply(try await service.heartbeat(from: phone, knownModificationMillis: nil, locator: nil))
            try await laptopBeat()

            // The namespace's state.
            let devices = try await service.devices(of: bob)
            let contacts = try await service.contacts(of: bob)
            let scenarios = try await service.scenarios(of: bob)
            #expect(devices.first { $0.did == phone }?.label == "Bob's phone")
            #expect(devices.first { $0.did == tablet }?.status == .offline)
            #expect(contacts.map(\.user) == [alice] && contacts.first?.name == "Alice W.")
            #expect(scenarios.active == "day" && scenarios.scenarios["day"]?.ranking == [phone, laptop])

            // Every replica: the same group, the namespace's.
            let log = try await service.changes(of: bob, sinceMillis: nil)
            var generator = SplitMix(seed: 16)
            var shuffled: [NamespaceReplica] = []
            for _ in 0..<50 {
                var replica = NamespaceReplica(user: bob)
                var rest = log.shuffled(using: &generator)[...]
                while !rest.isEmpty {
                    let take = Int.random(in: 1...4, using: &generator)
                    replica.apply(Array(rest.prefix(take)))
                    rest = rest.dropFirst(take)
                }
                shuffled.append(replica)
            }
            for replica in [onLaptop, onPhone] + shuffled {
                #expect(replica.devices.map(\.did) == devices.map(\.did))
                #expect(replica.devices.map(\.status) == devices.map(\.status))
                #expect(replica.labels == Dictionary(uniqueKeysWithValues: devices.compactMap { d in d.label.map { (d.did, $0) } }))
                #expect(replica.contacts == Dictionary(uniqueKeysWithValues: contacts.map { ($0.user, $0.name) }))
                #expect(replica.scenarios == scenarios.scenarios && replica.activeScenario == scenarios.active)
                #expect(replica.rankingInForce(atMillis: fixture.clock.millis).ranking == scenarios.ranking)
            }
            #expect(shuffled.allSatisfy { $0.devices == onPhone.devices && $0.contacts == onPhone.contacts })
        }
    }
}
