/// Wire: typed views over IPv4, IPv6 and TCP bytes (RFC 791, RFC 8200, RFC 9293), TCP options
/// (RFC 9293 §3.2, RFC 7323, RFC 2018), wrapping sequence numbers (RFC 9293 §3.4) and Internet
/// checksums, full (RFC 1071) and incremental (RFC 1624); window scaling between two shifts
/// (`WindowScale`, RFC 7323); header fields peeked before validation (`HeaderPeek`); and the
/// containers packets travel in between modules: `PacketBatch` with each packet's time
/// (`Instant`), direction and virtio-net header (`VirtioNetHeader`).
///
/// Invariants of the module:
/// - No I/O and no allocation on the accessors: every view wraps bytes it does not own.
/// - A view is obtained only through a checked constructor (`init(validating:)`); afterwards no
///   accessor can read outside the bytes, whatever they contain. Parsing untrusted bytes never
///   traps: malformed input is a `WireError` that names what was wrong.
/// - Setters exist only on views over mutable bytes and keep checksums correct incrementally.
/// - Field offsets live in the views (`IPv4Packet.Field`, `TCPSegment.Field`); other modules
///   read headers through the views or `HeaderPeek`, never by literal offset.
public enum WireModule {}

/// Why bytes were refused as a packet. The raw values are the labels used in drop counters.
public enum WireError: String, Error, Sendable, CaseIterable {
    case truncated = "truncated"
    case badVersion = "bad_ip_version"
    case badHeaderLength = "bad_ip_header_length"
    case badTotalLength = "bad_ip_total_length"
    case badIPChecksum = "bad_ip_checksum"
    case fragment = "ip_fragment"
    case badExtensionHeader = "bad_ipv6_extension_header"
    case notTCP = "not_tcp"
    case badTCPHeaderLength = "bad_tcp_header_length"
    case badTCPChecksum = "bad_tcp_checksum"
    case badTCPOptions = "bad_tcp_options"
}
