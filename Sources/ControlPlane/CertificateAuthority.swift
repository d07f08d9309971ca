import Crypto
import Foundation
import X509

/// The namespace's certificate authority: a P-256 key and a self-signed CA certificate,
/// created in the namespace's state directory on first start (`ca.key`, mode 0600, and
/// `ca.pem`) and loaded from there afterwards. Every control-link credential is a
/// certificate it issued; the identity in it comes from the CA's caller, never from the
/// request.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    private let key: P256.Signing.PrivateKey
    /// The CA certificate, PEM: what every peer trusts.
    public let caPEM: String

    public static let keyFile = "ca.key"
    public static let certificateFile = "ca.pem"
    /// Validity of the CA certificate made on first start.
    public static let caValidity: TimeInterval = 20 * 365 * 86_400
    /// Default validity of issued certificates.
    public static let defaultValidity: TimeInterval = 365 * 86_400
    /// Issued certificates start this long before `now`, for peers whose clocks lag.
    public static let backdating: TimeInterval = 300

    /// Loads `DIR/ca.key` + `DIR/ca.pem`, or creates both (and DIR, mode 0700) when neither
    /// exists. One without the other, unreadable or corrupt files, or a key that doesn't
    /// belong to the certificate are errors: a CA is never silently replaced.
    public static func loadOrCreate(directory: String, now: Date = Date()) throws -> CertificateAuthority {
        let keyPath = (directory as NSString).appendingPathComponent(keyFile)
        let certPath = (directory as NSString).appendingPathComponent(certificateFile)
        let keyText = try FileIO.readIfPresent(keyPath, what: "CA key")
        let certText = try FileIO.readIfPresent(certPath, what: "CA certificate")
        switch (keyText, certText) {
        case let (keyText?, certText?):
            let key = try KeyMaterial.privateKey(pem: keyText, what: "CA key \(keyPath)")
            let certificate = try KeyMaterial.certificate(pem: certText, what: "CA certificate \(certPath)")
            guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw PKIError("CA \(directory): \(keyFile) is not the key of \(certificateFile)")
            }
            guard (try? certificate.extensions.basicConstraints) == .isCertificateAuthority(maxPathLength: 0) else {
                throw PKIError("CA \(directory): \(certificateFile) is not a CA certificate")
            }
            return CertificateAuthority(certificate: certificate, key: key, caPEM: certText)
        case (nil, nil):
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw PKIError("CA \(directory): cannot create the directory (\(error.localizedDescription))")
            }
            let ca = try create(now: now)
            try FileIO.writeAtomically(ca.key.pemRepresentation, to: keyPath, mode: 0o600)
            try FileIO.writeAtomically(ca.caPEM, to: certPath, mode: 0o644)
            return ca
        case (nil, _?):
            throw PKIError("CA \(directory): \(certificateFile) exists but \(keyFile) is missing; refusing to make a new CA over it")
        case (_?, nil):
            throw PKIError("CA \(directory): \(keyFile) exists but \(certificateFile) is missing; refusing to make a new CA over it")
        }
    }

    /// A new CA in memory (tests, and the first start).
    public static func create(now: Date = Date()) throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        do {
            let id = IdentityCertificate.randomSerial().bytes.prefix(4).map { String($0, radix: 16) }.joined()
            let name = try DistinguishedName {
                OrganizationName("tsmp")
                CommonName("tsmp namespace CA \(id)")
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: IdentityCertificate.randomSerial(), publicKey: publicKey,
                notValidBefore: now - backdating, notValidAfter: now + caValidity,
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
            return CertificateAuthority(certificate: certificate, key: key, caPEM: try certificate.serializeAsPEM().pemString)
        } catch {
            throw PKIError("cannot create the namespace CA: \(error)")
        }
    }

    private init(certificate: Certificate, key: P256.Signing.PrivateKey, caPEM: String) {
        self.certificate = certificate
        self.key = key
        self.caPEM = caPEM
    }

    /// Issues a certificate for `identity` over the public key in `csrPEM`, after checking
    /// the CSR's signature (proof that the requester holds the key). The CSR's subject and
    /// attributes are ignored: the subject and extensions come from `identity`. P-256 keys only.
    public func issue(csrPEM: String, as identity: PeerIdentity, validity: TimeInterval = defaultValidity,
                      now: Date = Date()) throws -> String {
        let csr: CertificateSigningRequest
        do {
            csr = try CertificateSigningRequest(pemEncoded: csrPEM)
        } catch {
            throw PKIError("certificate request: not a PEM PKCS#10 request (\(error))")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw PKIError("certificate request: its signature does not match its key")
        }
        guard P256.Signing.PublicKey(csr.publicKey) != nil else {
            throw PKIError("certificate request: only P-256 keys are accepted")
        }
        return try sign(publicKey: csr.publicKey, identity: identity, hosts: [], validity: validity, now: now)
    }

    /// A key and certificate for a server of this namespace (the namespace's own listener,
    /// by default), with `hosts` (names or addresses) in its subject alternative names as
    /// information. Clients don't match host names; they check the identity.
    public func issueServer(identity: PeerIdentity = .namespace, hosts: [String], validity: TimeInterval = defaultValidity,
                            now: Date = Date()) throws -> (keyPEM: String, certPEM: String) {
        let key = P256.Signing.PrivateKey()
        let cert = try sign(publicKey: Certificate.PublicKey(key.publicKey), identity: identity, hosts: hosts,
                            validity: validity, now: now)
        return (key.pemRepresentation, cert)
    }

    /// A complete credential made here (key included): for the admin credential the
    /// namespace writes on first start, for its own listener, and for tests. Devices make
    /// their keys themselves (``KeyMaterial``) and send only a CSR.
    public func issueCredential(for identity: PeerIdentity, namespaceURL: String, hosts: [String] = [],
                                validity: TimeInterval = defaultValidity, now: Date = Date()) throws -> Credential {
        let (keyPEM, certPEM) = try issueServer(identity: identity, hosts: hosts, validity: validity, now: now)
        return Credential(identity: identity, keyPEM: keyPEM, certificatePEM: certPEM, caPEM: caPEM, namespaceURL: namespaceURL)
    }

    private func sign(publicKey: Certificate.PublicKey, identity: PeerIdentity, hosts: [String],
                      validity: TimeInterval, now: Date) throws -> String {
        do {
            let certificate = try Certificate(
                version: .v3, serialNumber: IdentityCertificate.randomSerial(), publicKey: publicKey,
                notValidBefore: now - Self.backdating, notValidAfter: now + validity,
                issuer: self.certificate.subject, subject: try IdentityCertificate.subject(for: identity),
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try IdentityCertificate.leafExtensions(identity: identity, hosts: hosts,
                                                                  issuerKey: self.certificate.publicKey, subjectKey: publicKey),
                issuerPrivateKey: Certificate.PrivateKey(key))
            return try certificate.serializeAsPEM().pemString
        } catch {
            throw PKIError("cannot issue a certificate for \(identity): \(error)")
        }
    }
}
