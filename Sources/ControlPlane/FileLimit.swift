import PacketIO

/// The process's limit on open descriptors, which bounds how many connections a service can
/// hold (each accepted connection is one). Distributions start services at a soft limit of
/// 1,024 while allowing far more (the hard limit); ``raise()`` takes what is allowed, and the
/// services log what it did.
public enum FileLimit {
    /// What ``raise()`` did, for the service's log.
    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        case raised(from: UInt64, to: UInt64)
        case unchanged(UInt64)
        case failed(String)

        /// The soft limit in effect afterwards (nil when it could not be read).
        public var current: UInt64? {
            switch self {
            case .raised(_, let to): to
            case .unchanged(let limit): limit
            case .failed: nil
            }
        }

        public var description: String {
            switch self {
            case .raised(let from, let to): "file limit raised from \(from) to \(to)"
            case .unchanged(let limit): "file limit \(limit) (already the hard limit)"
            case .failed(let reason): "file limit not raised: \(reason)"
            }
        }
    }

    /// The highest soft limit we ask for when the hard limit is unlimited (Linux refuses more
    /// than `fs.nr_open`, 1,048,576 by default).
    public static let unlimitedTarget: UInt64 = 1 << 20

    /// Raises the soft limit on open descriptors to the hard limit.
    public static func raise() -> Outcome {
        do {
            let (soft, hard) = try Syscall.fileLimit()
            let target = hard == UInt64.max ? unlimitedTarget : hard
            guard soft < target else { return .unchanged(soft) }
            try Syscall.setFileLimit(soft: target, hard: hard)
            return .raised(from: soft, to: target)
        } catch {
            return .failed(error.description)
        }
    }
}
