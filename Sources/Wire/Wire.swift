/// Wire: typed views over IPv4, IPv6 and TCP bytes (RFC 791, RFC 8200, RFC 9293), TCP options
/// (RFC 9293 §3.2, RFC 7323, RFC 2018), wrapping sequence numbers (RFC 9293 §3.4) and Internet
/// checksums, full (RFC 1071) and incremental (RFC 1624); window scaling between two shifts
/// (`WindowScale`, RFC 7323); header fields peeked before validation (`HeaderPeek`); and the
/// containers packets travel in between modules: `PacketBatch` with each packet's time
/// (`Instant`), direction and virtio-net header (`VirtioNetHeader`).
///
/// Both families: `TCPIPv4Packet` and `TCPIPv6Packet` (its extension headers walked by
/// `IPv6HeaderChain`, RFC 8200 §4) with their builders (`TCPPacketSpec`, `TCPIPv6PacketSpec`);
/// ICMP errors about TCP (`ICMPv4Message`/`QuotedTCPv4`, `ICMPv6Message`/`QuotedTCPv6`,
/// RFC 792, RFC 4443). Code that handles either family switches on `TCPIPPacket`, `IPAddress`,
/// `IPEndpoint` and `IPFamily`.
///
/// Invariants of the module:
/// - No I/O and no allocation on the accessors: every view wraps bytes it does not own.
/// - A view is obtained only through a checked constructor (`init(validating:)`); afterwards no
///   accessor can read outside the bytes, whatever they contain. Parsing untrusted bytes never
///   traps: malformed input is a `WireError` that names what was wrong.
/// - Setters exist only on views over mutable bytes and keep checksums correct incrementally.
/// - Field offsets live in the views (`IPv4Packet.Field`, `IPv6Packet.Field`,
///   `TCPSegment.Field`); other modules read headers through the views or `HeaderPeek`, never by
///   literal offset.
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
    /// An IPv6 jumbogram (RFC 2675: payload length 0 with a hop-by-hop header, or a Jumbo
    /// Payload option): not carried on the links the proxy serves, never rewritten.
    case jumbogram = "ipv6_jumbogram"
    /// An IPv6 packet whose routing header still has segments left (RFC 8200 §4.4): its
    /// destination is not the final one, so its TCP checksum covers another address (§8.1).
    case routingHeaderInTransit = "ipv6_routing_in_transit"
    case notTCP = "not_tcp"
    case badTCPHeaderLength = "bad_tcp_header_length"
    case badTCPChecksum = "bad_tcp_checksum"
    case badTCPOptions = "bad_tcp_options"
}
