import ControlPlane
import Foundation
import Testing

@Suite("Peer identities")
struct PeerIdentityTests {
    @Test("text form round trip", arguments: ["device:phone.bob@example.com", "proxy:gw1", "admin", "namespace"])
    func roundTrip(text: String) throws {
        let identity = try PeerIdentity(parsing: text)
        #expect(identity.description == text)
        let json = try JSONEncoder().encode(identity)
        #expect(String(decoding: json, as: UTF8.self) == "\"\(text)\"")
        #expect(try JSONDecoder().decode(PeerIdentity.self, from: json) == identity)
    }

    @Test("roles, names and the user of a device")
    func parts() throws {
        let phone = try PeerIdentity.device("phone.bob@example.com")
        #expect(phone.role == .device && phone.name == "phone.bob@example.com" && phone.userID == "bob@example.com")
        #expect(try PeerIdentity.proxy("gw1").userID == nil)
        #expect(PeerIdentity.admin.description == "admin" && PeerIdentity.namespace.role == .namespace)
    }

    @Test("bad identities are refused with a reason", arguments: [
        "", "root", "device:", "device:phone", "device:Phone.bob@example.com", "device:phone.Bob@example.com",
        "device:phone.bob@example", "device:-x.bob@example.com", "device:phone.bob example@x.com", "device:phone.@x.com",
        "proxy:", "proxy:gw.1", "proxy:" + String(repeating: "a", count: 64), "admin:bob", "namespace:x", "device:phone.bob@@x.com",
    ])
    func refused(text: String) {
        #expect(throws: PeerIdentity.Invalid.self) { try PeerIdentity(parsing: text) }
    }

    @Test("a bad identity in JSON is a decoding error")
    func badJSON() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(PeerIdentity.self, from: Data("\"proxy:GW\"".utf8)) }
    }
}
