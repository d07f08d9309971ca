import TestSupport
import Wire

/// Real packets captured from Linux 6.x (a TUN device, so checksums are complete, no offload):
/// `socket.connect(("10.2.0.2", 80))` from 10.1.0.2:40000 through a TUN routing 10.2.0.0/24,
/// with a hand-written SYN-ACK (seq 0x11223344, MSS 1460, SACK-permitted, timestamps
/// TSval 0x0a0b0c0d, window scale 7) written back so the kernel sent its ACK and "hello".
enum Fixture {
    /// The client's SYN (60 bytes): MSS 1460, SACK-permitted, timestamps, NOP, window scale 10.
    static let linuxSYN = hexBytes("""
        4500 003c d4e9 4000 4006 51cc 0a01 0002 0a02 0002
        9c40 0050 30a7 391f 0000 0000 a002 faf0 c418 0000
        0204 05b4 0402 080a 4393 2b03 0000 0000 0103 030a
        """)
    /// The client's ACK of the SYN-ACK (52 bytes): NOP NOP timestamps.
    static let linuxACK = hexBytes("""
        4500 0034 d4ea 4000 4006 51d3 0a01 0002 0a02 0002
        9c40 0050 30a7 3920 1122 3345 8010 003f 930a 0000
        0101 080a 4393 2b03 0a0b 0c0d
        """)
    /// The client's first data segment (57 bytes): PSH|ACK, "hello", an odd payload length.
    static let linuxData = hexBytes("""
        4500 0039 d4eb 4000 4006 51cd 0a01 0002 0a02 0002
        9c40 0050 30a7 3920 1122 3345 8018 003f 4f2b 0000
        0101 080a 4393 2b03 0a0b 0c0d
        6865 6c6c 6f
        """)
    /// An IPv6 SYN (80 bytes) from fd00:1::2 port 40000 to fd00:2::2 port 80, same capture way.
    static let linuxSYN6 = hexBytes("""
        600d 92a3 0028 0640
        fd00 0001 0000 0000 0000 0000 0000 0002
        fd00 0002 0000 0000 0000 0000 0000 0002
        9c40 0050 8627 ef99 0000 0000 a002 fd20 1ce4 0000
        0204 05a0 0402 080a b7ca 69e7 0000 0000 0103 030a
        """)

    static var all: [[UInt8]] { [linuxSYN, linuxACK, linuxData] }
}

// MARK: Reference checksum (RFC 1071 §4.1, word by word, no tricks)

/// One's-complement sum of big-endian 16-bit words, odd byte padded with zero, folded.
func referenceSum(_ bytes: some Collection<UInt8>, initial: UInt32 = 0) -> UInt16 {
    var sum = UInt64(initial)
    var it = bytes.makeIterator()
    while let hi = it.next() {
        let lo = it.next() ?? 0
        sum += UInt64(hi) << 8 | UInt64(lo)
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}

/// IPv4 header and TCP checksums of a TCP/IPv4 packet, checked with the reference sum and
/// offsets read here (independent of Wire's views).
func referenceChecksumsValid(_ p: [UInt8]) -> (ip: Bool, tcp: Bool) {
    let ihl = Int(p[0] & 0x0F) * 4
    let total = Int(p[2]) << 8 | Int(p[3])
    let ipOK = referenceSum(p[0..<ihl]) == 0xFFFF
    let tcpLength = total - ihl
    var pseudo: [UInt8] = Array(p[12..<20])
    pseudo += [0, p[9], UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)]
    let tcpOK = referenceSum(pseudo + p[ihl..<total]) == 0xFFFF
    return (ipOK, tcpOK)
}

func referenceValid(_ p: [UInt8]) -> Bool {
    let r = referenceChecksumsValid(p)
    return r.ip && r.tcp
}

/// Runs `body` with an IPv4 view over a copy of `bytes`.
func withIPv4<R>(_ bytes: inout [UInt8], _ body: (IPv4Packet) throws -> R) throws -> R {
    try bytes.withUnsafeMutableBytes { try body(try IPv4Packet(validating: $0)) }
}

/// The `WireError` a parse of `bytes` throws, or nil when it succeeds.
func ipv4Error(_ bytes: [UInt8]) -> WireError? {
    var b = bytes
    return b.withUnsafeMutableBytes { buf in
        do throws(WireError) { _ = try IPv4Packet(validating: buf); return nil } catch { return error }
    }
}
func ipv6Error(_ bytes: [UInt8]) -> WireError? {
    var b = bytes
    return b.withUnsafeMutableBytes { buf in
        do throws(WireError) { _ = try IPv6Packet(validating: buf); return nil } catch { return error }
    }
}
func tcpSegmentError(_ bytes: [UInt8]) -> WireError? {
    var b = bytes
    return b.withUnsafeMutableBytes { buf in
        do throws(WireError) { _ = try TCPSegment(validating: buf); return nil } catch { return error }
    }
}
func tcp4Error(_ bytes: [UInt8]) -> WireError? {
    var b = bytes
    return b.withUnsafeMutableBytes { buf in
        do throws(WireError) { _ = try TCPIPv4Packet(validating: buf); return nil } catch { return error }
    }
}

/// Sets the IPv4 total length and refills the header checksum (to make a shorter datagram).
func withTotalLength(_ bytes: [UInt8], _ n: Int) -> [UInt8] {
    var p = bytes
    p[2] = UInt8(n >> 8); p[3] = UInt8(n & 0xFF)
    refillIPv4Checksum(&p)
    return p
}
func refillIPv4Checksum(_ p: inout [UInt8]) {
    let ihl = Int(p[0] & 0x0F) * 4
    p[10] = 0; p[11] = 0
    let c = ~referenceSum(p[0..<ihl])
    p[10] = UInt8(c >> 8); p[11] = UInt8(c & 0xFF)
}
