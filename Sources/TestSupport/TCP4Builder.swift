import Wire

/// "ADDR:PORT" or "[IPv6]:PORT" as an endpoint; traps on malformed text (test tables are literals).
public func endpoint(_ text: String) -> IPEndpoint {
    guard let e = IPEndpoint(text) else { preconditionFailure("not an endpoint: \(text)") }
    return e
}

/// An IPv4 or IPv6 address's text as an address; traps on malformed text.
public func ipAddress(_ text: String) -> IPAddress {
    guard let a = IPAddress(text) else { preconditionFailure("not an address: \(text)") }
    return a
}

/// Dotted-quad text as an address; traps on malformed text.
public func address(_ text: String) -> IPv4Address {
    guard let a = IPv4Address(text) else { preconditionFailure("not an IPv4 address: \(text)") }
    return a
}

/// A TCP/IPv4 packet with both checksums filled, e.g.
/// `tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.syn], seq: 100, options: [.maximumSegmentSize(1460)])`.
/// Options are padded with NOPs to a 4-byte boundary. Traps when options exceed 40 bytes.
public func tcp4(src: String, dst: String, flags: TCPFlags = .ack, seq: UInt32 = 0, ack: UInt32 = 0,
                 window: UInt16 = 65535, options: [TCPOption] = [], payload: [UInt8] = [],
                 ttl: UInt8 = 64, id: UInt16 = 0, dontFragment: Bool = true) -> [UInt8] {
    tcp4(src: endpoint(src), dst: endpoint(dst), flags: flags, seq: seq, ack: ack, window: window,
         options: options, payload: payload, ttl: ttl, id: id, dontFragment: dontFragment)
}

/// As `tcp4(src:dst:...)` with endpoints already parsed.
public func tcp4(src: IPv4Endpoint, dst: IPv4Endpoint, flags: TCPFlags = .ack, seq: UInt32 = 0, ack: UInt32 = 0,
                 window: UInt16 = 65535, options: [TCPOption] = [], payload: [UInt8] = [],
                 ttl: UInt8 = 64, id: UInt16 = 0, dontFragment: Bool = true) -> [UInt8] {
    tcp4(src: IPEndpoint(src), dst: IPEndpoint(dst), flags: flags, seq: seq, ack: ack, window: window,
         options: options, payload: payload, ttl: ttl, id: id, dontFragment: dontFragment)
}

/// A TCP packet of the endpoints' family (both of one): IPv4 as `tcp4`, or IPv6 with `ttl` as
/// its hop limit (`id` and `dontFragment` have no IPv6 field). Table-driven tests run one
/// script over both families through it.
public func tcp4(src: IPEndpoint, dst: IPEndpoint, flags: TCPFlags = .ack, seq: UInt32 = 0, ack: UInt32 = 0,
                 window: UInt16 = 65535, options: [TCPOption] = [], payload: [UInt8] = [],
                 ttl: UInt8 = 64, id: UInt16 = 0, dontFragment: Bool = true) -> [UInt8] {
    let spec = TCPPacketSpec(source: src, destination: dst, seq: SeqNumber(seq), ack: SeqNumber(ack),
                             flags: flags, window: window, options: options, ttl: ttl,
                             identification: id, dontFragment: dontFragment)
    return TCPPacketBuilder.bytes(spec, payload: payload)
}

/// Runs `body` on a validated view over `bytes` (to call Wire's setters on a test packet).
/// Throws the `WireError` when the bytes are not a TCP/IPv4 packet.
public func withTCP4<R>(_ bytes: inout [UInt8], _ body: (TCPIPv4Packet) throws -> R) throws -> R {
    try bytes.withUnsafeMutableBytes { buf in
        let packet = try TCPIPv4Packet(validating: buf)
        return try body(packet)
    }
}
