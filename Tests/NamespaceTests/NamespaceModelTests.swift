import Foundation
import Logging
@testable import Namespace
import Testing

/// Identities, locators, the JSON forms, the replica and the database URLs: no database needed.
@Suite("Namespace model")
struct NamespaceModelTests {
    @Test("user ids: e-mail addresses, lowercased", arguments: [
        ("bob@example.com", "bob@example.com"),
        ("Bob.Smith+tsmp@Mail.Example.ORG", "bob.smith+tsmp@mail.example.org"),
        ("o'neil@x-y.io", "o'neil@x-y.io"),
    ])
    func validUserIDs(text: String, expected: String) throws {
        #expect(try UserID(text).email == expected)
    }

    @Test("bad user ids are refused with a reason", arguments: [
        "", "bob", "bob@", "@example.com", "bob@@example.com", "bob@example", "bob@-example.com",
        "bob@example.com-", "bob@exa_mple.com", ".bob@example.com", "bob.@example.com", "bo..b@example.com",
        "bob smith@example.com", "böb@example.com", "bob@example..com",
        String(repeating: "b", count: 65) + "@example.com",
        "bob@" + String(repeating: "a", count: 64) + ".com",
    ])
    func invalidUserIDs(text: String) {
        #expect(throws: NamespaceError.self) { try UserID(text) }
        do { _ = try UserID(text) } catch {
            guard case .invalid(let reason) = error else { Issue.record("expected invalid, got \(error)"); return }
            #expect(reason.contains("user id"))
        }
    }

    @Test func deviceIDs() throws {
        let id = try DeviceID("Phone.Bob@Example.com")
        #expect(id.name == "phone" && id.user == uid("bob@example.com"))
        #expect(id.description == "phone.bob@example.com")
        #expect(try DeviceID(name: "phone", user: uid("bob@example.com")) == id)
        for bad in ["phone", ".bob@example.com", "-x.bob@example.com", "phone.bob", "ph_one.bob@example.com", "phone.bob@example"] {
            #expect(throws: NamespaceError.self) { try DeviceID(bad) }
        }
        #expect(did("a.bob@example.com") < did("b.bob@example.com"))
        #expect(did("z.alice@example.com") < did("a.bob@example.com"))
    }

    @Test func identitiesAreJSONStrings() throws {
        let json = try JSONEncoder().encode([did("phone.bob@example.com")])
        #expect(String(decoding: json, as: UTF8.self) == #"["phone.bob@example.com"]"#)
        #expect(try JSONDecoder().decode(UserID.self, from: Data(#""Bob@Example.com""#.utf8)) == uid("bob@example.com"))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DeviceID.self, from: Data(#""phone""#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(UserID.self, from: Data(#""a@b""#.utf8)) }
    }

    @Test func locators() throws {
        #expect(try Locator(address: "10.0.0.2").address == "10.0.0.2")
        #expect(try Locator(address: "2001:DB8:0:0:0:0:0:1", agentPort: 7000) == Locator(address: "2001:db8::1", agentPort: 7000))
        // IPv4-mapped: the IPv4 address it stands for (RFC 4291 §2.5.5.2).
        #expect(try Locator(address: "::ffff:10.0.0.2").address == "10.0.0.2")
        #expect(try Locator(address: "::FFFF:a00:2") == Locator(address: "10.0.0.2"))
        for bad in ["", "10.0.0", "10.0.0.256", "010.0.0.1x", "[::1]", "fe80::1%eth0", "host.example.com", "1.2.3.4:80"] {
            #expect(throws: NamespaceError.self, "\(bad)") { try Locator(address: bad) }
        }
        #expect(throws: NamespaceError.self) { try Locator(address: "10.0.0.2", agentPort: 0) }
        let json = try JSONEncoder().encode(locator("10.0.0.2", port: 7000))
        #expect(try JSONDecoder().decode(Locator.self, from: json) == locator("10.0.0.2", port: 7000))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Locator.self, from: Data(#"{"address":"nowhere"}"#.utf8))
        }
    }

    @Test func changeJSON() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let cases: [(Change, String)] = [
            (.deviceAdded, #"{"kind":"deviceAdded"}"#),
            (.status(.busy), #"{"kind":"status","status":"busy"}"#),
            (.locator(nil), #"{"kind":"locator","locator":null}"#),
            (.locator(locator("10.0.0.2", port: 7)), #"{"kind":"locator","locator":{"address":"10.0.0.2","agentPort":7}}"#),
            (.preferences([did("phone.bob@example.com")]), #"{"kind":"preferences","ranking":["phone.bob@example.com"]}"#),
            (.deviceRemoved, #"{"kind":"deviceRemoved"}"#),
            (.deviceRenamed("Bob's phone"), #"{"kind":"deviceRenamed","label":"Bob's phone"}"#),
            (.contact(uid("alice@example.com"), name: "Alice"), #"{"kind":"contact","label":"Alice","user":"alice@example.com"}"#),
            (.contact(uid("alice@example.com"), name: nil), #"{"kind":"contact","label":null,"user":"alice@example.com"}"#),
            (.scenario("day", Scenario(ranking: [did("phone.bob@example.com")], window: try TimeWindow(parsing: "08:00-18:00"))),
             #"{"kind":"scenario","label":"day","scenario":{"ranking":["phone.bob@example.com"],"window":{"fromMinute":480,"toMinute":1080}}}"#),
            (.activeScenario(nil), #"{"kind":"activeScenario","label":null}"#),
        ]
        for (change, text) in cases {
            #expect(String(decoding: try encoder.encode(change), as: UTF8.self) == text)
            #expect(try JSONDecoder().decode(Change.self, from: Data(text.utf8)) == change)
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Change.self, from: Data(#"{"kind":"renamed"}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Change.self, from: Data(#"{"kind":"status","status":"asleep"}"#.utf8)) }
    }

    /// Last writer by (time, seq) wins per field, whatever the order and batching of the entries.
    @Test func replicaConverges() {
        let bob = uid("bob@example.com"), laptop = did("laptop.bob@example.com"), phone = did("phone.bob@example.com")
        func entry(_ seq: Int64, _ device: DeviceID, _ time: Int64, _ change: Change) -> ChangeEntry {
            ChangeEntry(seq: seq, device: device, timeMillis: time, recordedMillis: 100 + seq, change: change)
        }
        let log = [
            entry(1, laptop, 10, .deviceAdded), entry(2, laptop, 10, .status(.online)),
            entry(3, phone, 20, .deviceAdded),
            entry(4, phone, 50, .status(.busy)),
            entry(5, phone, 40, .status(.away)),                 // older than 4: loses
            entry(6, phone, 50, .status(.online)),               // same time as 4, later seq: wins
            entry(7, laptop, 30, .preferences([phone, laptop])),
            entry(8, phone, 25, .preferences([laptop, phone])),  // older: loses
            entry(9, phone, 60, .locator(locator("10.0.0.2"))),
            entry(10, phone, 61, .locator(nil)),
            entry(11, did("tv.alice@example.com"), 70, .deviceAdded),   // another group: ignored
        ]
        var reference = NamespaceReplica(user: bob)
        reference.apply(log)
        #expect(reference.devices == [Resolution(did: laptop, status: .online, locator: nil),
                                      Resolution(did: phone, status: .online, locator: nil)])
        #expect(reference.preferences == [phone, laptop])
        #expect(reference.onlineDevices.map(\.did) == [phone, laptop])
        #expect(reference.latestModificationMillis == 110)
        var generator = SplitMix(seed: 42)
        for _ in 0..<200 {
            let mixed = log.shuffled(using: &generator)
            var replica = NamespaceReplica(user: bob)
            var rest = mixed[...]
            while !rest.isEmpty {
                let take = Int.random(in: 1...3, using: &generator)
                replica.apply(Array(rest.prefix(take)))
                rest = rest.dropFirst(take)
            }
            replica.apply(Array(mixed.prefix(4)))   // a repeated batch changes nothing
            #expect(replica == reference)
        }
    }

    @Test func databaseURLs() async throws {
        let logger = NamespaceFixture.logger
        for bad in ["", "mysql://root@localhost/x", "sqlite:", "postgresql:///db", "postgresql://127.0.0.1/db",
                    "postgresql://u@127.0.0.1/db?schema=Bad-Name", "postgresql://u@127.0.0.1/db?tlsmode=maybe",
                    "postgresql://u@127.0.0.1/db?color=blue"] {
            do {
                _ = try await NamespaceDatabase.open(bad, logger: logger)
                Issue.record("\(bad) was accepted")
            } catch let error as NamespaceError {
                guard case .invalid(let reason) = error else { Issue.record("\(bad): expected invalid, got \(error)"); continue }
                #expect(reason.contains("database URL"))
            }
        }
        // The password never shows in an error.
        do {
            _ = try await NamespaceDatabase.open("postgresql://u:secret@127.0.0.1/db?tlsmode=sometimes", logger: logger)
        } catch {
            #expect(!"\(error)".contains("secret"))
        }
        // Nothing listens on port 1: a storage error naming the server, promptly.
        do {
            _ = try await NamespaceDatabase.open("postgresql://u:secret@127.0.0.1:1/db?tlsmode=disable", logger: logger)
            Issue.record("connected to port 1")
        } catch let error as NamespaceError {
            guard case .storage(let reason) = error else { Issue.record("expected storage, got \(error)"); return }
            #expect(reason.contains("127.0.0.1:1") && !reason.contains("secret"))
        }
        // An SQLite file in a directory that does not exist.
        await expectRefusal(NamespaceError.storage) {
            _ = try await NamespaceDatabase.open("sqlite:/nonexistent-tsmp-dir/ns.sqlite", logger: logger)
        }
        // In memory: works, empty.
        let store = try await NamespaceDatabase.open("sqlite::memory:", logger: logger)
        let ns = NamespaceService(store: store, clock: { 1 }, logger: logger)
        _ = try await ns.registerUser(uid("bob@example.com"), firstDevice: "laptop")
        #expect(try await ns.devices(of: uid("bob@example.com")).count == 1)
        await store.close()
    }
}
