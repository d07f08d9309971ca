import Crypto
import Namespace
import X509

extension KeyFingerprint {
    /// The fingerprint of the public key a CSR asks to have certified: SHA-256 over its DER
    /// SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). P-256 keys only, as `CertificateAuthority.issue`.
    /// Call it after `issue` accepted the CSR (which checks its signature).
    public init(csrPEM: String) throws(NamespaceError) {
        let spki: [UInt8]
        do {
            let csr = try CertificateSigningRequest(pemEncoded: csrPEM)
            guard let key = P256.Signing.PublicKey(csr.publicKey) else {
                throw NamespaceError.invalid("certificate request refused: not a P-256 key")
            }
            spki = Array(key.derRepresentation)
        } catch let error as NamespaceError {
            throw error
        } catch {
            throw .invalid("certificate request refused: \(error)")
        }
        try self.init(sha256Digest: Array(SHA256.hash(data: spki)))
    }
}
