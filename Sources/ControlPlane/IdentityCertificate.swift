#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import SwiftASN1
import X509

/// What every tsmp certificate says about its holder, and how it is read back.
///
/// The identity lives in the subject alternative name URI `tsmp:<identity>` (authoritative);
/// the subject repeats it for people (O = tsmp, OU = role, CN = identity text).
/// Leaf certificates carry basic constraints CA:false, key usage digitalSignature and
/// extended key usage serverAuth + clientAuth: the same certificate serves an agent both as
/// a client (heartbeats to the namespace) and as a server (MTRs from the proxy).
enum IdentityCertificate {
    static let uriPrefix = "tsmp:"

    static func subject(for identity: PeerIdentity) throws -> DistinguishedName {
        try DistinguishedName {
            OrganizationName("tsmp")
            OrganizationalUnitName(identity.role.rawValue)
            CommonName(identity.description)
        }
    }

    static func leafExtensions(identity: PeerIdentity, hosts: [String], issuerKey: Certificate.PublicKey,
                               subjectKey: Certificate.PublicKey) throws -> Certificate.Extensions {
        var names: [GeneralName] = [.uniformResourceIdentifier(uriPrefix + identity.description)]
        for host in hosts {
            if let bytes = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
            } else {
                names.append(.dnsName(host))
            }
        }
        return try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames(names)
            SubjectKeyIdentifier(hash: subjectKey)
            AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: issuerKey).keyIdentifier)
        }
    }

    /// The identity a certificate was issued for, from its `tsmp:` SAN URI.
    static func identity(of certificate: Certificate) throws -> PeerIdentity {
        let sans: SubjectAlternativeNames?
        do {
            sans = try certificate.extensions.subjectAlternativeNames
        } catch {
            throw PKIError("certificate: unreadable subject alternative names (\(error))")
        }
        let uris = (sans ?? SubjectAlternativeNames()).compactMap { name -> String? in
            if case .uniformResourceIdentifier(let uri) = name, uri.hasPrefix(uriPrefix) { return uri }
            return nil
        }
        guard uris.count == 1, let uri = uris.first else {
            throw PKIError(uris.isEmpty ? "certificate carries no tsmp identity (no tsmp: URI in its subject alternative names)"
                                        : "certificate carries \(uris.count) tsmp identities; exactly one is allowed")
        }
        return try PeerIdentity(parsing: String(uri.dropFirst(uriPrefix.count)))
    }

    /// 16 random bytes, top bit clear (serials are positive).
    static func randomSerial() -> Certificate.SerialNumber {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255) }
        bytes[0] &= 0x7F
        bytes[0] |= 0x01
        return Certificate.SerialNumber(bytes: bytes)
    }

    static func ipAddressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// Whether `certificate` was signed by `ca` (issuer name and signature).
    static func isIssued(_ certificate: Certificate, by ca: Certificate) -> Bool {
        certificate.issuer == ca.subject && ca.publicKey.isValidSignature(certificate.signature, for: certificate)
    }
}

extension PeerIdentity {
    /// The identity a tsmp certificate was issued for (its `tsmp:` SAN URI). Does not verify
    /// the certificate: use it on a certificate the TLS handshake or ``Credential`` verified.
    public init(certificatePEM: String) throws {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw PKIError("certificate: not a PEM X.509 certificate (\(error))")
        }
        self = try IdentityCertificate.identity(of: certificate)
    }

    /// Same, from DER bytes (what the TLS layer hands over).
    public init(certificateDER: [UInt8]) throws {
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: certificateDER)
        } catch {
            throw PKIError("certificate: not a DER X.509 certificate (\(error))")
        }
        self = try IdentityCertificate.identity(of: certificate)
    }
}

/// An identity, key or certificate problem, with what and why in one line.
public struct PKIError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
