import Wire

/// "[ADDR]:PORT" as an IPv6 endpoint; traps on malformed text (test tables are literals).
public func endpoint6(_ text: String) -> IPv6Endpoint {
    guard let e = IPv6Endpoint(text) else { preconditionFailure("not an IPv6 endpoint: \(text)") }
    return e
}

/// IPv6 text (RFC 4291 §2.2) as an address; traps on malformed text.
public func address6(_ text: String) -> IPv6Address {
    guard let a = IPv6Address(text) else { preconditionFailure("not an IPv6 address: \(text)") }
    return a
}

/// A TCP/IPv6 packet with its checksum filled, e.g.
/// `tcp6(src: "[fd00:1::2]:40000", dst: "[fd00:2::2]:80", flags: [.syn], seq: 100)`: the IPv6
/// counterpart of `tcp4`, with the IPv6 header's own fields (hop limit, traffic class, flow
/// label). Traps when options exceed 40 bytes.
public func tcp6(src: String, dst: String, flags: TCPFlags = .ack, seq: UInt32 = 0, ack: UInt32 = 0,
                 window: UInt16 = 65535, options: [TCPOption] = [], payload: [UInt8] = [],
                 hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) -> [UInt8] {
    tcp6(src: endpoint6(src), dst: endpoint6(dst), flags: flags, seq: seq, ack: ack, window: window, options: options,
         payload: payload, hopLimit: hopLimit, trafficClass: trafficClass, flowLabel: flowLabel)
}

/// As `tcp6(src:dst:...)` with endpoints already parsed.
public func tcp6(src: IPv6Endpoint, dst: IPv6Endpoint, flags: TCPFlags = .ack, seq: UInt32 = 0, ack: UInt32 = 0,
                 window: UInt16 = 65535, options: [TCPOption] = [], payload: [UInt8] = [],
                 hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) -> [UInt8] {
    let spec = TCPIPv6PacketSpec(source: src, destination: dst, seq: SeqNumber(seq), ack: SeqNumber(ack), flags: flags,
                                 window: window, options: options, hopLimit: hopLimit, trafficClass: trafficClass,
                                 flowLabel: flowLabel)
    return TCPPacketBuilder.bytes(spec, payload: payload)
}

/// Runs `body` on a validated TCP/IPv6 view over `bytes` (to call Wire's setters on a test
/// packet). Throws the `WireError` when the bytes are not a TCP/IPv6 packet.
public func withTCP6<R>(_ bytes: inout [UInt8], _ body: (TCPIPv6Packet) throws -> R) throws -> R {
    try bytes.withUnsafeMutableBytes { buf in
        let packet = try TCPIPv6Packet(validating: buf)
        return try body(packet)
    }
}
