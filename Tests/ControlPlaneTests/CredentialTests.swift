import ControlPlane
import Foundation
import Testing

@Suite("Credential files")
struct CredentialTests {
    static func make(_ ca: CertificateAuthority, _ identity: PeerIdentity = .admin, validity: TimeInterval = 86_400,
                     now: Date = Date()) throws -> Credential {
        try ca.issueCredential(for: identity, namespaceURL: "https://127.0.0.1:7443", validity: validity, now: now)
    }

    /// Loads `path` expecting a PKIError whose text contains `fragment`.
    static func expectRefused(_ path: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: PKIError.self, sourceLocation: sourceLocation) { try Credential.load(from: path) }
        #expect(error?.description.contains(fragment) == true, "\(error?.description ?? "-")", sourceLocation: sourceLocation)
        #expect(error?.description.contains(path) == true, sourceLocation: sourceLocation)
    }

    @Test("write (atomic, 0600) and load round trip")
    func roundTrip() throws {
        let dir = try TempDirectory()
        let ca = try CertificateAuthority.create()
        let credential = try Self.make(ca, try .device("phone.bob@example.com"))
        try credential.write(to: dir.file("phone.cred"))
        #expect(try dir.mode("phone.cred") == 0o600)
        #expect(try Credential.load(from: dir.file("phone.cred")) == credential)
        // Overwriting keeps the mode and leaves no temporary files behind.
        try credential.write(to: dir.file("phone.cred"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["phone.cred"])
    }

    @Test("each kind of bad credential file is refused with what is wrong")
    func loadErrors() throws {
        let dir = try TempDirectory()
        let ca = try CertificateAuthority.create()
        let good = try Self.make(ca)

        Self.expectRefused(dir.file("absent.cred"), "no such file")

        try dir.write("text.cred", "this is not json")
        Self.expectRefused(dir.file("text.cred"), "not JSON")

        try dir.write("missing.cred", #"{"identity":"admin","keyPEM":"x","caPEM":"y","namespaceURL":"z"}"#)
        Self.expectRefused(dir.file("missing.cred"), "missing field 'certificatePEM'")

        try dir.write("wrongtype.cred", #"{"identity":"admin","keyPEM":1,"certificatePEM":"x","caPEM":"y","namespaceURL":"z"}"#)
        Self.expectRefused(dir.file("wrongtype.cred"), "wrong field 'keyPEM'")

        try dir.write("badidentity.cred", #"{"identity":"king","keyPEM":"x","certificatePEM":"x","caPEM":"y","namespaceURL":"z"}"#)
        Self.expectRefused(dir.file("badidentity.cred"), "wrong field 'identity'")

        var otherKey = good
        otherKey.keyPEM = try Self.make(ca).keyPEM
        try otherKey.write(to: dir.file("otherkey.cred"))
        Self.expectRefused(dir.file("otherkey.cred"), "private key does not match the certificate")

        var forged = try Self.make(try CertificateAuthority.create())
        forged.caPEM = ca.caPEM
        try forged.write(to: dir.file("forged.cred"))
        Self.expectRefused(dir.file("forged.cred"), "not issued by the CA in the file")

        try Self.make(ca, validity: 3600, now: Date() - 7200).write(to: dir.file("expired.cred"))
        Self.expectRefused(dir.file("expired.cred"), "expired")

        var renamed = good
        renamed.identity = try .proxy("gw1")
        try renamed.write(to: dir.file("renamed.cred"))
        Self.expectRefused(dir.file("renamed.cred"), "certificate is for admin, not proxy:gw1")

        var garbledKey = good
        garbledKey.keyPEM = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
        try garbledKey.write(to: dir.file("garbled.cred"))
        Self.expectRefused(dir.file("garbled.cred"), "keyPEM: not a PEM P-256 private key")
    }
}
