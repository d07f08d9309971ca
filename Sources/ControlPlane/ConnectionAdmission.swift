import NIOCore
import Synchronization

/// Counts an endpoint's open connections per remote address and overall, and refuses new
/// ones past ``EndpointLimits/maxConnectionsPerAddress`` or ``EndpointLimits/maxConnections``.
/// A connection is counted from the moment it is accepted (before any TLS handshake) until
/// it closes.
final class ConnectionAdmission: Sendable {
    enum Decision: Equatable {
        case admitted
        case refused(String)
    }
    private struct Counts {
        var perAddress: [String: Int] = [:]
        var total = 0
    }
    private let limits: EndpointLimits
    private let counts = Mutex(Counts())

    init(limits: EndpointLimits) { self.limits = limits }

    /// Counts a new connection from `address` (its IP, without the port) or refuses it; an
    /// admitted connection must be ``release(_:)``d when it closes.
    func admit(_ address: String) -> Decision {
        counts.withLock { counts in
            let open = counts.perAddress[address, default: 0]
            if open >= limits.maxConnectionsPerAddress {
                return .refused("\(open) connections open from \(address) (limit \(limits.maxConnectionsPerAddress))")
            }
            if counts.total >= limits.maxConnections {
                return .refused("\(counts.total) connections open (limit \(limits.maxConnections))")
            }
            counts.perAddress[address] = open + 1
            counts.total += 1
            return .admitted
        }
    }

    func release(_ address: String) {
        counts.withLock { counts in
            guard let open = counts.perAddress[address] else { return }
            counts.perAddress[address] = open > 1 ? open - 1 : nil
            counts.total -= 1
        }
    }

    /// Open connections from `address`, and overall (for tests and metrics).
    func open(from address: String? = nil) -> Int {
        counts.withLock { counts in address.map { counts.perAddress[$0, default: 0] } ?? counts.total }
    }
}

/// Closes a refused connection as soon as it is active.
final class RefuseConnection: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }
}
