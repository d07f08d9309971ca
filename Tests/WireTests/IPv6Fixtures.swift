import TestSupport
import Wire

/// ICMPv6 errors about TCP captured from Linux 6.x by `scripts/capture-icmpv6-fixtures`: a
/// router namespace (fd00:1::1) between a host (fd00:1::2) and a server (fd00:2::2). The quoted
/// TCP checksums are the host's partial ones (veth offload), so only the ICMPv6 checksums, which
/// the router computes in full, are complete.
enum ICMPv6Fixture {
    /// Packet Too Big, MTU 1280 (RFC 4443 §3.2): the router could not forward a 1500-byte
    /// segment (a GSO packet of 4128 payload bytes) from [fd00:1::2]:40001 to [fd00:2::2]:80,
    /// PSH|ACK seq 0x0cf808b9. The quote fills the 1280 bytes: after the TCP header with
    /// timestamps come 1160 payload bytes 0, 1, ..., 255, 0, 1, ... (what the host sent).
    static let packetTooBig = hexBytes("""
        6006 3514 04d8 3a40
        fd00 0001 0000 0000 0000 0000 0000 0001
        fd00 0001 0000 0000 0000 0000 0000 0002
        0200 6f55 0000 0500
        6009 f755 1020 0640
        fd00 0001 0000 0000 0000 0000 0000 0002
        fd00 0002 0000 0000 0000 0000 0000 0002
        9c41 0050 0cf8 08b9 4e8d ca93 8018 0040 0a2f 0000
        0101 080a ce85 6942 6f48 3da1
        """) + (0..<1160).map { UInt8(truncatingIfNeeded: $0) }

    /// Destination Unreachable code 0, no route (RFC 4443 §3.1; the router's `unreachable`
    /// route for fd00:3::/64), about a SYN from [fd00:1::2]:40002 to [fd00:3::2]:80.
    static let noRoute = hexBytes("""
        6004 b0ea 0058 3a40
        fd00 0001 0000 0000 0000 0000 0000 0001
        fd00 0001 0000 0000 0000 0000 0000 0002
        0100 2bee 0000 0000
        600d 801c 0028 0640
        fd00 0001 0000 0000 0000 0000 0000 0002
        fd00 0003 0000 0000 0000 0000 0000 0002
        9c42 0050 2ef2 743c 0000 0000 a002 fd20 fa37 0000
        0204 05a0 0402 080a c729 41d9 0000 0000 0103 030a
        """)

    /// Time Exceeded code 0, hop limit (RFC 4443 §3.3), about a SYN sent with hop limit 1 from
    /// [fd00:1::2]:40003 to [fd00:2::2]:80.
    static let hopLimitExceeded = hexBytes("""
        6003 e089 0058 3a40
        fd00 0001 0000 0000 0000 0000 0000 0001
        fd00 0001 0000 0000 0000 0000 0000 0002
        0300 462c 0000 0000
        600a 276f 0028 0601
        fd00 0001 0000 0000 0000 0000 0000 0002
        fd00 0002 0000 0000 0000 0000 0000 0002
        9c43 0050 160c 872e 0000 0000 a002 fc94 fa36 0000
        0204 04c4 0402 080a 84e7 c829 0000 0000 0103 030a
        """)

    static var all: [[UInt8]] { [packetTooBig, noRoute, hopLimitExceeded] }
}

// MARK: Reference IPv6 checksums (RFC 8200 §8.1, the pseudo-header laid out as bytes)

/// The textbook upper-layer checksum check: the pseudo-header (source, destination, 32-bit
/// upper-layer length, three zero bytes, next header) as bytes, then the upper-layer bytes
/// `p[offset..<40+payloadLength]`, summed word by word (`referenceSum`). Offsets and fields are
/// read here, not through Wire.
func referenceIPv6UpperValid(_ p: [UInt8], upperOffset: Int = 40, nextHeader: UInt8) -> Bool {
    let end = 40 + (Int(p[4]) << 8 | Int(p[5]))
    let length = end - upperOffset
    var pseudo = Array(p[8..<40])
    pseudo += [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
    pseudo += [0, 0, 0, nextHeader]
    return referenceSum(pseudo + p[upperOffset..<end]) == 0xFFFF
}

/// The TCP checksum of a TCP/IPv6 packet whose TCP header is at `tcpOffset`.
func referenceTCP6Valid(_ p: [UInt8], tcpOffset: Int = 40) -> Bool {
    referenceIPv6UpperValid(p, upperOffset: tcpOffset, nextHeader: 6)
}

/// The ICMPv6 checksum of an ICMPv6 packet without extension headers (RFC 4443 §2.3).
func referenceICMPv6Valid(_ p: [UInt8]) -> Bool {
    referenceIPv6UpperValid(p, nextHeader: 58)
}

func tcp6Error(_ bytes: [UInt8]) -> WireError? {
    var b = bytes
    return b.withUnsafeMutableBytes { buf in
        do throws(WireError) { _ = try TCPIPv6Packet(validating: buf); return nil } catch { return error }
    }
}

func icmp6Error(_ bytes: [UInt8]) -> ICMPWireError? {
    var b = bytes
    return b.withUnsafeMutableBytes { buf in
        do throws(ICMPWireError) { _ = try ICMPv6Message(validating: buf); return nil } catch { return error }
    }
}
func quoted6Error(_ bytes: [UInt8]) -> ICMPWireError? {
    var b = bytes
    return b.withUnsafeMutableBytes { buf in
        do throws(ICMPWireError) { _ = try QuotedTCPv6(validating: buf); return nil } catch { return error }
    }
}
