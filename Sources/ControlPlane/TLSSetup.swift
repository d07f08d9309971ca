import NIOSSL

/// TLS for a control-link server: present our certificate, require a client certificate and
/// verify it against the namespace CA (BoringSSL checks chain, signature and validity dates),
/// TLS 1.2 or later (1.3 negotiated when both sides have it). The peer's identity is read
/// from its certificate after the handshake (``HTTPEndpoint``).
public struct ServerTLS: Sendable {
    /// Who this server is (from its credential).
    public let identity: PeerIdentity
    let context: NIOSSLContext

    public init(credential: Credential) throws {
        identity = credential.identity
        context = try TLSSetup.context(TLSSetup.serverConfiguration(credential: credential), what: "server TLS for \(credential.identity)")
    }
}

/// TLS for a control-link client: present our certificate, verify the server's chain against
/// the namespace CA. No host name check (locators change); the client checks the server's
/// identity from its certificate against what it expected (``PeerClient``).
public struct ClientTLS: Sendable {
    /// Who this client is (nil: it presents no certificate).
    public let identity: PeerIdentity?
    let context: NIOSSLContext

    init(identity: PeerIdentity?, context: NIOSSLContext) {
        self.identity = identity
        self.context = context
    }

    public init(credential: Credential) throws {
        identity = credential.identity
        context = try TLSSetup.context(TLSSetup.clientConfiguration(credential: credential), what: "client TLS for \(credential.identity)")
    }
}

public enum TLSSetup {
    /// The server side's configuration (see ``ServerTLS``).
    public static func serverConfiguration(credential: Credential) throws -> TLSConfiguration {
        let (chain, key, ca) = try material(credential)
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .certificates([ca]))
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        return configuration
    }

    /// The client side's configuration (see ``ClientTLS``).
    public static func clientConfiguration(credential: Credential) throws -> TLSConfiguration {
        let (chain, key, ca) = try material(credential)
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates([ca])
        configuration.certificateChain = chain.map { .certificate($0) }
        configuration.privateKey = .privateKey(key)
        return configuration
    }

    static func material(_ credential: Credential) throws -> ([NIOSSLCertificate], NIOSSLPrivateKey, NIOSSLCertificate) {
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(credential.certificatePEM.utf8))
            let key = try NIOSSLPrivateKey(bytes: Array(credential.keyPEM.utf8), format: .pem)
            guard let ca = try NIOSSLCertificate.fromPEMBytes(Array(credential.caPEM.utf8)).first, !chain.isEmpty else {
                throw PKIError("empty certificate")
            }
            return (chain, key, ca)
        } catch {
            throw PKIError("credential for \(credential.identity): unusable for TLS (\(error))")
        }
    }

    static func context(_ configuration: TLSConfiguration, what: String) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw PKIError("\(what): \(error)")
        }
    }
}
