import Crypto
import Foundation
import X509

/// The key of a credential being issued (`tsmp namespace register`, `proxy-add`, `device
/// introduce`), kept next to where the credential goes (`OUT.key-pending`, mode 0600) until the
/// namespace has answered. When the answer is lost (the namespace committed, then the client
/// crashed or timed out), the same command run again sends a CSR for the same key, which the
/// namespace answers like the first time (issue 10, finding 5), instead of a new key it must
/// refuse with 409.
public struct PendingCredentialKey: Sendable {
    public let path: String
    public let keyPEM: String
    public let csrPEM: String
    /// The key came from an earlier attempt that got no answer.
    public let resumed: Bool

    public static func path(for credentialPath: String) -> String { credentialPath + ".key-pending" }

    /// The pending key for `credentialPath`: the one an earlier attempt left, or a new one,
    /// written before any request is sent; with a fresh CSR for `identity`.
    public static func prepare(for identity: PeerIdentity, credentialPath: String) throws -> PendingCredentialKey {
        let path = path(for: credentialPath)
        if let keyPEM = try FileIO.readIfPresent(path, what: "pending key") {
            let key = try KeyMaterial.privateKey(pem: keyPEM, what: "pending key \(path)")
            return PendingCredentialKey(path: path, keyPEM: keyPEM, csrPEM: try csr(for: identity, key: key), resumed: true)
        }
        let (keyPEM, csrPEM) = try KeyMaterial.newKeyAndCSR(for: identity)
        try FileIO.writeAtomically(keyPEM, to: path, mode: 0o600)
        return PendingCredentialKey(path: path, keyPEM: keyPEM, csrPEM: csrPEM, resumed: false)
    }

    /// Forgets the key: the namespace answered (with a credential, written by now, or a refusal).
    public func remove() {
        unlink(path)
    }

    private static func csr(for identity: PeerIdentity, key: P256.Signing.PrivateKey) throws -> String {
        do {
            let csr = try CertificateSigningRequest(
                version: .v1, subject: try IdentityCertificate.subject(for: identity),
                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes())
            return try csr.serializeAsPEM().pemString
        } catch {
            throw PKIError("cannot make a certificate request for \(identity): \(error)")
        }
    }
}
