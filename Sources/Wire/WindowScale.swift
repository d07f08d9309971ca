/// A TCP window field read with one window scale and written with another (RFC 7323 §2): the
/// proxy translates windows between a device and a server whose handshakes fixed different
/// shifts (after a migration the new device's shift is not the one the server knows), and
/// between scaled and unscaled fields (a SYN's window is never scaled, RFC 7323 §2.2).
///
/// The one place for the rules every translation follows:
/// - a field means `field << shift` bytes (RFC 7323 §2.3);
/// - the field written is `bytes >> shift`, rounded down: RFC 7323 §2.4 (SEG.WND = RCV.WND >>
///   Rcv.Wind.Shift). Rounding down never offers more than the receiver did, so the right
///   edge it advertised is never passed; the window it may appear to retract by less than one
///   unit of the coarser scale is what §2.4 tells senders to accept;
/// - except that an open window is never written as closed: less than one unit becomes one.
///   A zero would stop the sender until its persist timer fires (RFC 9293 §3.8.6.1) although
///   the receiver offered room; Linux rounds its own scaled windows up for the same reason.
///   The overshoot is under one unit, and a receiver trims what lands past its edge;
/// - the field is clamped to 65,535 (16 bits, RFC 9293 §3.1).
public struct WindowScale: Sendable, Equatable, Hashable {
    /// The shift of the field as its sender wrote it.
    public var from: UInt8
    /// The shift its receiver applies.
    public var to: UInt8

    public init(from: UInt8, to: UInt8) {
        self.from = from
        self.to = to
    }

    /// The bytes a window field means at `shift` (RFC 7323 §2.3).
    @inlinable public static func bytes(_ field: UInt16, shift: UInt8) -> Int { Int(field) << Int(shift) }

    /// The window field that announces `bytes` at `shift`: rounded down but at least 1 when
    /// `bytes` is not 0, at most 65,535.
    @inlinable public static func field(bytes: Int, shift: UInt8) -> UInt16 {
        guard bytes > 0 else { return 0 }
        return UInt16(min(max(bytes >> Int(shift), 1), 65_535))
    }

    /// `field` (written at `from`) as the field a receiver applying `to` reads as the same window.
    @inlinable public func translate(_ field: UInt16) -> UInt16 {
        Self.field(bytes: Self.bytes(field, shift: from), shift: to)
    }
}
