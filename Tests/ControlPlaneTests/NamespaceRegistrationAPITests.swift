import ControlPlane
import Foundation
import Namespace
import Testing
import TestSupport

/// Registration repeated after a lost answer (issue 10, finding 5: a user committed but never
/// acknowledged got 409 forever): the same CSR gets the same answer with a fresh certificate
/// that works with the key; another key or device stays 409 and changes nothing.
extension NamespaceAPITests {
    /// POSTs `body` as `speaker`; the status and the decoded credential when it is 2xx.
    static func post(_ ns: Service, _ path: String, as speaker: Credential, _ body: some Encodable) async throws
        -> (status: Int, issued: IssuedCredential?, text: String) {
        let answer = try await ns.client(speaker).sendRaw("POST", path, body: Array(try JSONEncoder().encode(body)))
        let issued = (200..<300).contains(answer.status) ? try JSONDecoder().decode(IssuedCredential.self, from: Data(answer.body)) : nil
        return (answer.status, issued, String(decoding: answer.body, as: UTF8.self))
    }

    static func repeatedRegistration(_ database: String) async throws {
        let ns = try await Service(database: database)
        let admin = try ns.admin
        let (key, csr) = try KeyMaterial.newKeyAndCSR(for: try .device("laptop.bob@example.com"))
        let request = RegisterUserRequest(user: "bob@example.com", device: "laptop", csr: csr)
        let first = try await post(ns, "/v1/users", as: admin, request)
        #expect(first.status == 201, "\(first.text)")
        let laptop = Credential(identity: try #require(first.issued).identity, keyPEM: key,
                                certificatePEM: try #require(first.issued).certificate, caPEM: ns.ca.caPEM, namespaceURL: ns.url)
        ns.advance(1_000)
        _ = try await ns.heartbeat(laptop, address: "10.1.0.2")
        let before = try await snapshot(ns, "bob@example.com")

        // The admin never saw the first answer and asks again with the same CSR.
        let again = try await post(ns, "/v1/users", as: admin, request)
        #expect(again.status == 201, "\(again.text)")
        let reissued = try #require(again.issued)
        #expect(reissued.identity == laptop.identity)
        #expect(reissued.device == before.1.first)
        #expect(reissued.certificate != laptop.certificatePEM)
        // The fresh certificate is for the same key: the device speaks with it.
        let renewed = Credential(identity: reissued.identity, keyPEM: key, certificatePEM: reissued.certificate,
                                 caPEM: reissued.ca, namespaceURL: ns.url)
        let whoami: WhoAmI = try await ns.client(renewed).call("GET", "/v1/whoami")
        #expect(whoami.identity == laptop.identity)

        // Another key for the same device, or another first device: 409 with the reason.
        let (_, otherCSR) = try KeyMaterial.newKeyAndCSR(for: try .device("laptop.bob@example.com"))
        let otherKey = try await post(ns, "/v1/users", as: admin, RegisterUserRequest(user: "bob@example.com", device: "laptop", csr: otherCSR))
        #expect(otherKey.status == 409)
        #expect(otherKey.text.contains("certified for another key"), "\(otherKey.text)")
        let (_, tabletCSR) = try KeyMaterial.newKeyAndCSR(for: try .device("tablet.bob@example.com"))
        let otherDevice = try await post(ns, "/v1/users", as: admin, RegisterUserRequest(user: "bob@example.com", device: "tablet", csr: tabletCSR))
        #expect(otherDevice.status == 409)
        #expect(otherDevice.text.contains("registered already"), "\(otherDevice.text)")
        #expect(try await snapshot(ns, "bob@example.com") == before)

        // Introduction: the same rule.
        let (_, phoneCSR) = try KeyMaterial.newKeyAndCSR(for: try .device("phone.bob@example.com"))
        let introduce = IntroduceDeviceRequest(name: "phone", csr: phoneCSR)
        let phone = try await post(ns, "/v1/devices", as: laptop, introduce)
        #expect(phone.status == 201, "\(phone.text)")
        let afterIntroduction = try await snapshot(ns, "bob@example.com")
        let phoneAgain = try await post(ns, "/v1/devices", as: laptop, introduce)
        #expect(phoneAgain.status == 201, "\(phoneAgain.text)")
        #expect(phoneAgain.issued?.device == phone.issued?.device)
        let (_, otherPhoneCSR) = try KeyMaterial.newKeyAndCSR(for: try .device("phone.bob@example.com"))
        let phoneOtherKey = try await post(ns, "/v1/devices", as: laptop, IntroduceDeviceRequest(name: "phone", csr: otherPhoneCSR))
        #expect(phoneOtherKey.status == 409)
        #expect(phoneOtherKey.text.contains("certified for another key"), "\(phoneOtherKey.text)")
        #expect(try await snapshot(ns, "bob@example.com") == afterIntroduction)

        // Proxies: the same rule.
        let (_, proxyCSR) = try KeyMaterial.newKeyAndCSR(for: try .proxy("gw1"))
        for _ in 0..<2 {
            let added = try await post(ns, "/v1/proxies", as: admin, RegisterProxyRequest(name: "gw1", csr: proxyCSR))
            #expect(added.status == 201, "\(added.text)")
        }
        let (_, otherProxyCSR) = try KeyMaterial.newKeyAndCSR(for: try .proxy("gw1"))
        let proxyOtherKey = try await post(ns, "/v1/proxies", as: admin, RegisterProxyRequest(name: "gw1", csr: otherProxyCSR))
        #expect(proxyOtherKey.status == 409)
        #expect(proxyOtherKey.text.contains("certified for another key"), "\(proxyOtherKey.text)")
        await ns.stop()
    }

    /// What `tsmp namespace register` does when the answer is lost: its key waits in
    /// OUT.key-pending, and the same command again repeats the request with it.
    @Test("a registration whose answer was lost is repeated with the pending key and succeeds")
    func lostAnswer() async throws {
        let ns = try await Service()
        let dir = try TempDirectory()
        let out = dir.file("laptop.cred")
        let identity = try PeerIdentity.device("laptop.bob@example.com")
        let first = try PendingCredentialKey.prepare(for: identity, credentialPath: out)
        #expect(!first.resumed)
        #expect(try dir.mode("laptop.cred.key-pending") == 0o600)
        let committed = try await Self.post(ns, "/v1/users", as: try ns.admin,
                                       RegisterUserRequest(user: "bob@example.com", device: "laptop", csr: first.csrPEM))
        #expect(committed.status == 201)
        // ... and the client died before writing the credential. The same command again:
        let again = try PendingCredentialKey.prepare(for: identity, credentialPath: out)
        #expect(again.resumed && again.keyPEM == first.keyPEM)
        #expect(try KeyFingerprint(csrPEM: again.csrPEM) == KeyFingerprint(csrPEM: first.csrPEM))
        let repeated = try await Self.post(ns, "/v1/users", as: try ns.admin,
                                      RegisterUserRequest(user: "bob@example.com", device: "laptop", csr: again.csrPEM))
        #expect(repeated.status == 201, "\(repeated.text)")
        #expect(repeated.issued?.device == committed.issued?.device)
        again.remove()
        #expect(!FileManager.default.fileExists(atPath: dir.file("laptop.cred.key-pending")))
        await ns.stop()
    }
}
