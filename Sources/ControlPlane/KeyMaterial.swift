import Crypto
import Foundation
import X509

/// Key generation on the device that will hold the key: only the CSR (public key + proof of
/// possession) goes to the namespace; the private key never leaves this process's caller.
public enum KeyMaterial {
    /// A new P-256 key and a CSR for `identity`, both PEM. The CSR's subject is informative
    /// only: the CA sets the subject from the identity it decided on.
    public static func newKeyAndCSR(for identity: PeerIdentity) throws -> (keyPEM: String, csrPEM: String) {
        let key = P256.Signing.PrivateKey()
        do {
            let csr = try CertificateSigningRequest(
                version: .v1, subject: try IdentityCertificate.subject(for: identity),
                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes())
            return (key.pemRepresentation, try csr.serializeAsPEM().pemString)
        } catch {
            throw PKIError("cannot make a certificate request for \(identity): \(error)")
        }
    }

    /// Parses a PEM private key (PKCS#8 or SEC1, P-256 only).
    static func privateKey(pem: String, what: String) throws -> P256.Signing.PrivateKey {
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw PKIError("\(what): not a PEM P-256 private key")
        }
    }

    static func certificate(pem: String, what: String) throws -> Certificate {
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw PKIError("\(what): not a PEM X.509 certificate (\(error))")
        }
    }
}
