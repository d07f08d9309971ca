#if canImport(Glibc)
import Glibc
#endif

/// Counts of packets a device refused one by one, by errno (EMSGSIZE, ENETUNREACH, EPERM from
/// a firewall, ...). Devices skip such packets and count them here instead of throwing: one
/// bad packet must not stop the data plane (PacketDevice's contract).
///
/// Invariants: every count is > 0; `total` is their sum. Recording an errno already seen does
/// not allocate.
public struct ErrnoCounts: Sendable, Equatable, CustomStringConvertible {
    public private(set) var counts: [Int32: Int] = [:]
    public private(set) var total: Int = 0

    public init() {}

    /// How many packets were refused with `errno`.
    public subscript(errno: Int32) -> Int { counts[errno, default: 0] }

    public mutating func record(_ errno: Int32, count: Int = 1) {
        counts[errno, default: 0] += count
        total += count
    }

    /// "EMSGSIZE=3 ENETUNREACH=1", by errno value; "none" when empty.
    public var description: String {
        if counts.isEmpty { return "none" }
        return counts.keys.sorted().map { "\(ErrnoCounts.name(of: $0))=\(counts[$0]!)" }.joined(separator: " ")
    }

    /// The symbolic name of the errnos a packet device meets; "errno N" for the others.
    public static func name(of errno: Int32) -> String {
        switch errno {
        case EPERM: "EPERM"
        case EACCES: "EACCES"
        case EINVAL: "EINVAL"
        case EMSGSIZE: "EMSGSIZE"
        case ENETUNREACH: "ENETUNREACH"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETDOWN: "ENETDOWN"
        case EHOSTDOWN: "EHOSTDOWN"
        case ECONNREFUSED: "ECONNREFUSED"
        case ENOBUFS: "ENOBUFS"
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case EAFNOSUPPORT: "EAFNOSUPPORT"
        case EIO: "EIO"
        case ENOMEM: "ENOMEM"
        case EPROTO: "EPROTO"
        default: "errno \(errno)"
        }
    }

    /// True for errnos that say the descriptor itself is unusable (so a device throws), as
    /// opposed to one packet being refused (counted and skipped).
    public static func meansDeviceBroken(_ errno: Int32) -> Bool {
        switch errno {
        case EBADF, EBADFD, EFAULT, ENOTSOCK, ENOTTY, EOPNOTSUPP, EDESTADDRREQ, ENOTCONN: true
        default: false
        }
    }
}

/// A device that counts the packets it refused (every device of this module does). Kept
/// apart from `PacketDevice` so that protocol stays as the lead wrote it.
public protocol WriteErrorCounting: AnyObject {
    var writeErrors: ErrnoCounts { get }
}

/// A device that merges segments before writing them (GRO: `TunDevice` with the virtio-net
/// header), for the `segments_coalesced` counter.
public protocol SegmentCoalescing: AnyObject {
    var segmentsCoalesced: UInt64 { get }
}
