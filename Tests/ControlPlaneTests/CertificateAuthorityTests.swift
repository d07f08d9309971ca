import ControlPlane
import Foundation
import Testing

@Suite("Namespace CA")
struct CertificateAuthorityTests {
    @Test("first start creates ca.key (0600) and ca.pem; a restart loads the same CA")
    func createAndReload() throws {
        let dir = try TempDirectory()
        let state = dir.file("state")
        let first = try CertificateAuthority.loadOrCreate(directory: state)
        #expect(try dir.mode("state/ca.key") == 0o600)
        #expect(FileManager.default.fileExists(atPath: dir.file("state/ca.pem")))
        let second = try CertificateAuthority.loadOrCreate(directory: state)
        #expect(second.caPEM == first.caPEM)
        // A certificate issued before the restart still checks out against the reloaded CA.
        let credential = try first.issueCredential(for: .admin, namespaceURL: "https://127.0.0.1:1")
        var reissued = credential
        reissued.caPEM = second.caPEM
        try reissued.validate()
        // And the reloaded CA can still sign (its key was loaded, not made anew).
        let (_, csr) = try KeyMaterial.newKeyAndCSR(for: .admin)
        _ = try second.issue(csrPEM: csr, as: .admin)
    }

    @Test("corrupt or half-present CA files are errors, never silently replaced")
    func corruptFiles() throws {
        let dir = try TempDirectory()
        let ca = try CertificateAuthority.loadOrCreate(directory: dir.path)
        let key = try String(contentsOfFile: dir.file("ca.key"), encoding: .utf8)

        try dir.write("ca.pem", "garbage")
        #expect(throws: PKIError.self) { try CertificateAuthority.loadOrCreate(directory: dir.path) }
        try dir.write("ca.pem", ca.caPEM)
        try dir.write("ca.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        let error = #expect(throws: PKIError.self) { try CertificateAuthority.loadOrCreate(directory: dir.path) }
        #expect(error?.description.contains("ca.key") == true)
        // Another CA's key next to this certificate.
        let other = try TempDirectory()
        _ = try CertificateAuthority.loadOrCreate(directory: other.path)
        try dir.write("ca.key", try String(contentsOfFile: other.file("ca.key"), encoding: .utf8))
        let mismatch = #expect(throws: PKIError.self) { try CertificateAuthority.loadOrCreate(directory: dir.path) }
        #expect(mismatch?.description.contains("not the key") == true)
        // Key gone, certificate left.
        try FileManager.default.removeItem(atPath: dir.file("ca.key"))
        let missing = #expect(throws: PKIError.self) { try CertificateAuthority.loadOrCreate(directory: dir.path) }
        #expect(missing?.description.contains("ca.key is missing") == true)
        #expect(try String(contentsOfFile: dir.file("ca.pem"), encoding: .utf8) == ca.caPEM)
        _ = key
    }

    @Test("CSR -> certificate -> identity: the subject comes from the CA's caller, not the CSR")
    func issueFromCSR() throws {
        let ca = try CertificateAuthority.create()
        let (keyPEM, csrPEM) = try KeyMaterial.newKeyAndCSR(for: try .device("phone.bob@example.com"))
        let laptop = try PeerIdentity.device("laptop.bob@example.com")
        let certPEM = try ca.issue(csrPEM: csrPEM, as: laptop)
        #expect(try PeerIdentity(certificatePEM: certPEM) == laptop)
        let credential = Credential(identity: laptop, keyPEM: keyPEM, certificatePEM: certPEM, caPEM: ca.caPEM,
                                    namespaceURL: "https://127.0.0.1:7443")
        try credential.validate()
        #expect(credential.expires.map { $0 > Date() + 300 * 86_400 } == true)
    }

    @Test("a CSR whose signature doesn't match its key is refused")
    func tamperedCSR() throws {
        let ca = try CertificateAuthority.create()
        let (_, csrPEM) = try KeyMaterial.newKeyAndCSR(for: .admin)
        // Flip one bit in the base64 body near the end (inside the signature).
        var lines = csrPEM.split(separator: "\n").map(String.init)
        let i = lines.count - 2
        var chars = Array(lines[i])
        chars[2] = chars[2] == "A" ? "B" : "A"
        lines[i] = String(chars)
        #expect(throws: PKIError.self) { try ca.issue(csrPEM: lines.joined(separator: "\n") + "\n", as: .admin) }
        #expect(throws: PKIError.self) { try ca.issue(csrPEM: "not a csr", as: .admin) }
    }

    @Test("server certificates carry the identity and the hosts")
    func serverCertificate() throws {
        let ca = try CertificateAuthority.create()
        let (keyPEM, certPEM) = try ca.issueServer(hosts: ["127.0.0.1", "::1", "ns.example.com"])
        #expect(try PeerIdentity(certificatePEM: certPEM) == .namespace)
        try Credential(identity: .namespace, keyPEM: keyPEM, certificatePEM: certPEM, caPEM: ca.caPEM, namespaceURL: "").validate()
    }
}
