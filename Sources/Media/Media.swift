/// Media: the sans-IO part of multimedia service migration (SMP draft §4.3, §5.2-§5.5).
///
/// What the proxy needs to relay an RTSP 1.0 (RFC 2326) session with RTP/RTCP (RFC 3550) over
/// UDP, cache its description (SDP, RFC 4566), and move it to another device of the same user
/// right before the first packet of a group of pictures (H.264 per RFC 6184, MPEG-4 Part 2 per
/// RFC 6416):
/// - `RTSPMessageParser` / `RTSPMessage` (+Rewrite, +Answers): messages from a TCP byte stream,
///   within limits; the exact bytes of what the proxy changes; the proxy's own answers to a
///   second player (DESCRIBE from the cache, SETUP, PLAY).
/// - `RTSPSessionTracker`: one relayed control connection's session (description, transports,
///   state, timeout).
/// - `SessionDescription`: the media lines, codecs and control URLs of a session.
/// - `RTPHeader`, `RTCPCompound`, `RTCPBuilder`, `RTPContinuity`: views and rewrites of packets.
/// - `GOPBoundaryDetector`: says "this RTP packet is the first packet of a new GOP" once per GOP.
/// - `MediaMigration`, `LossMonitor`: state machines driven by `handle(input, now:) -> [actions]`.
///
/// Invariants of the module:
/// - No I/O, no clock, no Foundation: time is a `MediaTime` passed in by the caller.
/// - Untrusted bytes never trap: every parser checks lengths before reading and reports a typed
///   error naming what was wrong; bad input changes no state.
public enum MediaModule {}

/// A point in time on the caller's monotonic clock, in nanoseconds (the engine's
/// `PacketIO.Instant` converts with `MediaTime(nanoseconds: instant.nanoseconds)`).
public struct MediaTime: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    /// `s` seconds; negative or NaN is 0, beyond the range saturates (never traps: durations may
    /// come from command-line options).
    public static func seconds(_ s: Double) -> MediaTime { MediaTime(nanoseconds: nanoseconds(s)) }
    public static func < (a: MediaTime, b: MediaTime) -> Bool { a.nanoseconds < b.nanoseconds }
    /// `self + d`, saturating.
    public func adding(_ d: MediaDuration) -> MediaTime {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(d.nanoseconds)
        return MediaTime(nanoseconds: overflow ? .max : sum)
    }
    /// Seconds from `earlier` to `self` (0 when `earlier` is later).
    public func seconds(since earlier: MediaTime) -> Double {
        nanoseconds >= earlier.nanoseconds ? Double(nanoseconds - earlier.nanoseconds) / 1e9 : 0
    }
    public var description: String { "\(Double(nanoseconds) / 1e9)s" }

    static func nanoseconds(_ s: Double) -> UInt64 {
        guard s > 0 else { return 0 }
        let n = s * 1e9
        return n < 18_446_744_073_709_549_568 ? UInt64(n) : .max
    }
}

/// A length of time in nanoseconds.
public struct MediaDuration: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    /// `s` seconds; negative or NaN is 0, beyond the range saturates.
    public static func seconds(_ s: Double) -> MediaDuration { MediaDuration(nanoseconds: MediaTime.nanoseconds(s)) }
    public static func < (a: MediaDuration, b: MediaDuration) -> Bool { a.nanoseconds < b.nanoseconds }
}
