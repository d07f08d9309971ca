import Engine
import TestSupport
import Wire

/// The migration lab of DESIGN §8 as the engine sees it, in transparent mode: the laptop (the
/// old device), the phone (the new device), the server on tcp/9000 and the NAT address.
enum MigrationLab {
    static let laptop = endpoint("10.1.0.2:40000")
    static let phone = endpoint("10.3.0.2:50000")
    static let server = endpoint("10.2.0.2:9000")
    static let nat = endpoint("10.2.0.1:61000")
    static let phoneAddress = address("10.3.0.2")
    /// The TTLs each end's SYN arrives with (distinct, so the proxy's packets in an end's name
    /// can be told apart by them).
    static let laptopTTL: UInt8 = 63, serverTTL: UInt8 = 57, phoneTTL: UInt8 = 61

    static func config(limits: EngineLimits = EngineLimits()) -> EngineConfig {
        EngineConfig(nat: address("10.2.0.1"), nat6: address6("fd00:2::1"), intercepts: [PortRange(9000, 9000)], limits: limits)
    }
}

/// The migration lab's ends in one address family: a harness runs one script over either
/// (`MigrationHarness(family:)`); the IPv6 lab mirrors the IPv4 one (fd00:N::2 for 10.N.0.2).
struct LabEnds: Sendable {
    var laptop: IPEndpoint, phone: IPEndpoint, server: IPEndpoint, nat: IPEndpoint
    var phoneAddress: IPAddress

    static let ipv4 = LabEnds(laptop: MigrationLab.laptop, phone: MigrationLab.phone, server: MigrationLab.server,
                              nat: MigrationLab.nat, phoneAddress: .v4(MigrationLab.phoneAddress))
    static let ipv6 = LabEnds(laptop: endpoint("[fd00:1::2]:40000"), phone: endpoint("[fd00:3::2]:50000"),
                              server: endpoint("[fd00:2::2]:9000"), nat: endpoint("[fd00:2::1]:61000"),
                              phoneAddress: ipAddress("fd00:3::2"))
    static func of(_ family: IPFamily) -> LabEnds { family == .ipv4 ? ipv4 : ipv6 }
}

/// What one end offers in its SYN, laid out as Linux does (MSS, SACK-permitted, timestamps,
/// NOP, window scale).
struct EndOptions {
    var mss: UInt16 = 1460
    var sack = true
    var timestamps = true
    var windowScale: UInt8? = 7
    /// ECN-setup SYN (ECE, CWR) / SYN-ACK (ECE), RFC 3168 §6.1.1.
    var ecn = false

    /// Linux defaults: MSS 1460, SACK-permitted, timestamps, window scale 7.
    static let linux = EndOptions()
    /// An old stack: MSS and SACK-permitted only (no timestamps, no window scaling).
    static let plain = EndOptions(timestamps: false, windowScale: nil)

    func syn(tsval: UInt32, tsecr: UInt32 = 0) -> [TCPOption] {
        var o: [TCPOption] = [.maximumSegmentSize(mss)]
        if sack { o.append(.sackPermitted) }
        if timestamps { o.append(.timestamp(value: tsval, echoReply: tsecr)) }
        if let ws = windowScale { o += [.noOperation, .windowScale(ws)] }
        return o
    }
}
