/// Why a control-link request failed, in words a person can act on.
public enum PeerClientError: Error, CustomStringConvertible, Equatable {
    /// The client was set up wrongly (bad URL, https without a credential, http without
    /// `--insecure-lab`).
    case configuration(String)
    /// TCP: "cannot connect to HOST:PORT: connection refused", timed out, ...
    case connect(String)
    /// TLS: "TLS handshake with HOST:PORT failed: the server refused our certificate (unknown CA)".
    case tls(String)
    /// The server's certificate is valid but for someone else than expected.
    case wrongServer(String)
    /// No complete answer within the request timeout.
    case timeout(String)
    /// The connection broke or the answer was not HTTP we understand.
    case protocolError(String)
    /// The server answered with a non-2xx status; `reason` is its `{"error": ...}` text.
    case refused(status: Int, reason: String)

    public var description: String {
        switch self {
        case .configuration(let s), .connect(let s), .tls(let s), .wrongServer(let s), .timeout(let s), .protocolError(let s):
            return s
        case .refused(let status, let reason):
            return "refused (\(status)): \(reason)"
        }
    }

    /// Maps a NIO/BoringSSL error to one of the cases, naming `target` (HOST:PORT).
    static func classify(_ error: any Error, target: String, tls: Bool, handshakeDone: Bool) -> PeerClientError {
        if let e = error as? PeerClientError { return e }
        let text = String(describing: error)
        let lower = text.lowercased()
        if lower.contains("connection refused") {
            return .connect("cannot connect to \(target): connection refused")
        }
        if lower.contains("connecttimeout") || lower.contains("connect timeout") {
            return .connect("cannot connect to \(target): no answer within \(PeerClient.connectTimeoutSeconds) s")
        }
        if lower.contains("network is unreachable") || lower.contains("no route to host") {
            return .connect("cannot connect to \(target): \(lower.contains("no route") ? "no route to host" : "network is unreachable")")
        }
        let upper = text.uppercased()
        let prefix = "TLS handshake with \(target) failed: "
        if upper.contains("ALERT_UNKNOWN_CA") {
            return .tls(prefix + "the server refused our certificate (unknown CA)")
        }
        if upper.contains("ALERT_CERTIFICATE_EXPIRED") {
            return .tls(prefix + "the server refused our certificate (certificate expired)")
        }
        if upper.contains("CERTIFICATE_REQUIRED") || upper.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") {
            return .tls(prefix + "the server requires a client certificate and we sent none")
        }
        if upper.contains("ALERT_BAD_CERTIFICATE") || upper.contains("ALERT_CERTIFICATE_UNKNOWN") || upper.contains("ALERT_UNSUPPORTED_CERTIFICATE") {
            return .tls(prefix + "the server refused our certificate")
        }
        if upper.contains("CERTIFICATE_VERIFY_FAILED") {
            return .tls(prefix + "we refused the server's certificate (not issued by our namespace CA, or expired)")
        }
        if upper.contains("WRONG_VERSION_NUMBER") || upper.contains("HTTP_REQUEST") {
            return .tls(prefix + "the server does not speak TLS (a plain-HTTP --insecure-lab endpoint?)")
        }
        if tls && !handshakeDone {
            if lower.contains("eof") || lower.contains("uncleanshutdown") || lower.contains("connection reset") {
                return .tls(prefix + "the server closed the connection (did it refuse our certificate?)")
            }
            return .tls(prefix + text)
        }
        if lower.contains("connection reset") || lower.contains("uncleanshutdown") || lower.contains("eof") {
            return .protocolError("\(target) closed the connection before answering")
        }
        return .protocolError("request to \(target) failed: \(text)")
    }
}
