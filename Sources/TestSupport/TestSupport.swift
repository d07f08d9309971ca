/// TestSupport: what the test targets share, so that a test reads as a table of packets.
///
/// - `tcp4(src:dst:flags:seq:ack:window:options:payload:)` builds a TCP/IPv4 packet with right
///   checksums (on top of Wire's `TCPPacketBuilder`).
/// - `tcp6(src:dst:...)`, `endpoint6(_:)`, `address6(_:)`, `withTCP6(_:_:)`: the same for
///   TCP/IPv6 (Wire's `TCPIPv6PacketSpec`).
/// - `DecodedTCP4` copies every field of a packet into a value that tests compare and print.
/// - `withTCP4(_:_:)` runs Wire's setters on an array's bytes.
/// - `hexBytes(_:)` / `hexString(_:)` read and write byte fixtures.
/// - `SeededGenerator` is a reproducible random source for property tests.
///
/// Helpers trap on malformed literals (a test-table typo), never on malformed packets.
public enum TestSupportModule {}
