import NIOCore

/// The time and connection limits of an ``HTTPEndpoint`` (issue 10, finding 4: a request
/// whose body never completes was held forever, and ~1,000 half-open TLS handshakes took
/// every descriptor of a 1,024-file process).
///
/// Deadlines are absolute, from the start of the phase, whatever trickles in meanwhile:
/// - ``handshakeTimeout``: a TLS handshake must be done this long after the connection was
///   accepted (mTLS endpoints), else the connection is closed;
/// - ``headerTimeout``: a request's head must be complete this long after its first byte
///   (the first request: after the connection is ready), else 408 and close
///   (RFC 9110 §15.5.9);
/// - ``bodyTimeout``: its body must be complete this long after the head, else 408 and close;
/// - ``idleTimeout``: a connection with no request in progress is closed after this long
///   without a byte. While a handler works on a request no deadline runs.
///
/// Connections are counted per remote address and overall, TLS handshakes in progress
/// included: past ``maxConnectionsPerAddress`` or ``maxConnections`` a new connection is
/// closed at once (and the refusal logged, at most once per address per 10 s).
public struct EndpointLimits: Sendable, Equatable {
    public var handshakeTimeout: TimeAmount
    public var headerTimeout: TimeAmount
    public var bodyTimeout: TimeAmount
    public var idleTimeout: TimeAmount
    public var maxConnectionsPerAddress: Int
    public var maxConnections: Int

    public init(handshakeTimeout: TimeAmount = .seconds(10), headerTimeout: TimeAmount = .seconds(10),
                bodyTimeout: TimeAmount = .seconds(10), idleTimeout: TimeAmount = .seconds(60),
                maxConnectionsPerAddress: Int = 64, maxConnections: Int = 4096) {
        self.handshakeTimeout = handshakeTimeout
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.maxConnectionsPerAddress = max(1, maxConnectionsPerAddress)
        self.maxConnections = max(1, maxConnections)
    }

    /// The defaults, with the overall cap kept below the process's file limit (`fileLimit`,
    /// e.g. ``FileLimit/Outcome/current``) less `reserve` descriptors for everything else.
    public static func fitting(fileLimit: UInt64?, reserve: UInt64 = 128) -> EndpointLimits {
        var limits = EndpointLimits()
        if let fileLimit {
            let room = fileLimit > reserve ? fileLimit - reserve : 1
            limits.maxConnections = Int(min(UInt64(limits.maxConnections), max(16, room)))
        }
        return limits
    }
}
