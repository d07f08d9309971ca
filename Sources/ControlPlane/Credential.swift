import Crypto
import Foundation
import X509

/// Everything one peer needs to speak on control links, in one JSON file (mode 0600):
/// who it is, its private key, the certificate the namespace issued for that key, the
/// namespace's CA certificate (what it trusts), and where the namespace is.
///
/// ```json
/// {"identity": "device:phone.bob@example.com", "keyPEM": "-----BEGIN PRIVATE KEY-----...",
///  "certificatePEM": "-----BEGIN CERTIFICATE-----...", "caPEM": "...", "namespaceURL": "https://10.0.0.1:7443"}
/// ```
public struct Credential: Codable, Sendable, Equatable {
    public var identity: PeerIdentity
    public var keyPEM: String
    public var certificatePEM: String
    public var caPEM: String
    public var namespaceURL: String

    public init(identity: PeerIdentity, keyPEM: String, certificatePEM: String, caPEM: String, namespaceURL: String) {
        self.identity = identity; self.keyPEM = keyPEM; self.certificatePEM = certificatePEM
        self.caPEM = caPEM; self.namespaceURL = namespaceURL
    }

    /// Reads and checks a credential file: JSON with all five fields, a P-256 key that belongs
    /// to the certificate, a certificate issued by the CA in the file for the identity in the
    /// file, valid at `now`. Each failure names the file and what is wrong with it.
    public static func load(from path: String, now: Date = Date()) throws -> Credential {
        let text = try FileIO.read(path, what: "credential file")
        let credential: Credential
        do {
            credential = try JSONDecoder().decode(Credential.self, from: Data(text.utf8))
        } catch DecodingError.keyNotFound(let key, _) {
            throw PKIError("credential file \(path): missing field '\(key.stringValue)'")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw PKIError("credential file \(path): wrong field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' (\(context.debugDescription))")
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            throw PKIError("credential file \(path): wrong field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' (\(context.debugDescription))")
        } catch {
            throw PKIError("credential file \(path): not JSON")
        }
        do {
            try credential.validate(now: now)
        } catch let error as PKIError {
            throw PKIError("credential file \(path): \(error.description)")
        }
        return credential
    }

    /// The checks of ``load(from:now:)`` on a credential in memory.
    public func validate(now: Date = Date()) throws {
        let key = try KeyMaterial.privateKey(pem: keyPEM, what: "keyPEM")
        let certificate = try KeyMaterial.certificate(pem: certificatePEM, what: "certificatePEM")
        let ca = try KeyMaterial.certificate(pem: caPEM, what: "caPEM")
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw PKIError("the private key does not match the certificate")
        }
        guard IdentityCertificate.isIssued(certificate, by: ca) else {
            throw PKIError("the certificate was not issued by the CA in the file")
        }
        let certified = try IdentityCertificate.identity(of: certificate)
        guard certified == identity else {
            throw PKIError("the certificate is for \(certified), not \(identity)")
        }
        guard now <= certificate.notValidAfter else {
            throw PKIError("the certificate expired on \(certificate.notValidAfter)")
        }
        guard now >= certificate.notValidBefore else {
            throw PKIError("the certificate is not valid before \(certificate.notValidBefore)")
        }
        guard now <= ca.notValidAfter else {
            throw PKIError("the CA certificate expired on \(ca.notValidAfter)")
        }
    }

    /// Writes the credential atomically with mode 0600 (it holds a private key).
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(self)
        } catch {
            throw PKIError("credential file \(path): cannot encode (\(error))")
        }
        try FileIO.writeAtomically(Array(data) + [0x0A], to: path, mode: 0o600)
    }

    /// When the certificate stops being valid.
    public var expires: Date? {
        (try? Certificate(pemEncoded: certificatePEM))?.notValidAfter
    }
}
