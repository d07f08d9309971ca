import Wire

/// Why the engine did not forward a packet. Raw values are the `reason` label of
/// `tsmp_packets_dropped_total`.
public enum DropReason: String, CaseIterable, Sendable, Codable {
    case truncated, badIPVersion = "bad_ip_version", badIPHeaderLength = "bad_ip_header_length"
    case badIPTotalLength = "bad_ip_total_length", badIPChecksum = "bad_ip_checksum"
    case ipFragment = "ip_fragment", badIPv6ExtensionHeader = "bad_ipv6_extension_header"
    /// IPv4 fragments (`IPv4Reassembly`, RFC 791 §3.2): one that is not a multiple of 8 bytes
    /// though more follow, or would end past 65,535 bytes; one that overlaps a piece already
    /// held or disagrees on the end (its whole datagram is discarded); one beyond the limits
    /// on datagrams and bytes held (in all, and per source); and datagrams given up after 15 s
    /// incomplete (counted once each).
    case fragmentMalformed = "fragment_malformed", fragmentOverlap = "fragment_overlap"
    case fragmentLimit = "fragment_limit", fragmentTimeout = "fragment_timeout"
    case notTCP = "not_tcp", badTCPHeaderLength = "bad_tcp_header_length"
    case badTCPChecksum = "bad_tcp_checksum", badTCPOptions = "bad_tcp_options"
    case ipv6Unsupported = "ipv6_unsupported"
    /// IPv6 packets Wire refuses to rewrite: jumbograms (RFC 2675) and packets whose routing
    /// header has segments left (RFC 8200 §4.4, §8.1).
    case ipv6Jumbogram = "ipv6_jumbogram", ipv6RoutingInTransit = "ipv6_routing_in_transit"
    /// A non-SYN for a flow the table does not hold (service address or NAT port).
    case noFlow = "no_flow"
    /// A packet to a NAT port from an endpoint other than the flow's server.
    case unexpectedSource = "unexpected_source"
    case flowTableFull = "flow_table_full"
    case natPortsExhausted = "nat_ports_exhausted"
    /// MPTCP, TCP-MD5 or TCP-AO toward a service address (can't be spliced or passed through).
    case unspliceable
    /// A segment of a flow whose migration was interrupted by a restart: answered with a RST.
    case interruptedMigration = "interrupted_migration"
    /// A RST outside its receiver's window (RFC 5961 §3.2): the receiver would discard it.
    case resetOutOfWindow = "reset_out_of_window"
    /// ICMP errors (`SpliceEngine+ICMP`; RFC 5508 §4.1): a wrong ICMP checksum; a message
    /// shorter than its 8-byte header; a quote naming a NAT port that no live flow holds; a
    /// quoted sequence number outside what was sent and not yet acknowledged (RFC 5927 §4.1);
    /// over the rate limit.
    case badICMPChecksum = "bad_icmp_checksum", icmpMalformed = "icmp_malformed"
    case icmpNoFlow = "icmp_no_flow"
    case icmpOutOfWindow = "icmp_out_of_window", icmpRateLimited = "icmp_rate_limited"

    public init(_ e: WireError) {
        switch e {
        case .truncated: self = .truncated
        case .badVersion: self = .badIPVersion
        case .badHeaderLength: self = .badIPHeaderLength
        case .badTotalLength: self = .badIPTotalLength
        case .badIPChecksum: self = .badIPChecksum
        case .fragment: self = .ipFragment
        case .badExtensionHeader: self = .badIPv6ExtensionHeader
        case .jumbogram: self = .ipv6Jumbogram
        case .routingHeaderInTransit: self = .ipv6RoutingInTransit
        case .notTCP: self = .notTCP
        case .badTCPHeaderLength: self = .badTCPHeaderLength
        case .badTCPChecksum: self = .badTCPChecksum
        case .badTCPOptions: self = .badTCPOptions
        }
    }
}

/// Everything the engine counts. Plain integers, owned by the engine's thread; the gateway
/// copies them out for metrics.
public struct EngineCounters: Sendable, Equatable {
    public var packetsIn: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var packetsForwarded: UInt64 = 0
    public var bytesForwarded: UInt64 = 0
    /// Packets forwarded unchanged because they belong to no managed flow (transparent mode:
    /// flows older than the proxy, MPTCP/MD5/AO flows).
    public var packetsPassedThrough: UInt64 = 0
    public var packetsGenerated: UInt64 = 0
    /// Packets a migration absorbed (acks of the emulated sender, frozen-flow segments).
    public var packetsConsumed: UInt64 = 0
    /// Packets the engine wanted to make but had no room for in the output batch.
    public var generatedOverflow: UInt64 = 0
    /// Segments larger than a device's MSS, split (after a migration to a smaller-MSS device).
    public var segmentsSplit: UInt64 = 0
    /// Super-segments read (offloads on): each stands for several wire packets.
    public var superSegmentsIn: UInt64 = 0
    public var flowsCreated: UInt64 = 0
    public var flowsExpired: UInt64 = 0
    public var flowsClosed: UInt64 = 0
    /// Flows handed to the kernel's forwarding, and taken back (`SpliceEngine+KernelPath`).
    public var kernelPathEntered: UInt64 = 0
    public var kernelPathLeft: UInt64 = 0
    /// ACKs sent to learn a flow's sequence state back after the kernel forwarded it.
    public var stateProbes: UInt64 = 0
    /// ICMP errors about managed flows passed on translated to the other end (RFC 5508 §4.2),
    /// and ones the proxy took for itself (about its own segments during a migration).
    public var icmpErrorsTranslated: UInt64 = 0
    public var icmpErrorsAbsorbed: UInt64 = 0
    /// IPv4 datagrams put back together from their fragments (`IPv4Reassembly`), and the
    /// fragments that went into them (a fragment still waiting is in neither, nor in drops).
    public var datagramsReassembled: UInt64 = 0
    public var fragmentsReassembled: UInt64 = 0
    /// SYNs whose MSS option was lowered (`MSSClamp`).
    public var synsClamped: UInt64 = 0
    /// Segments of a device without timestamps sent to the server with the option added
    /// (`SpliceEngine+SynthesizedTimestamp`).
    public var timestampsSynthesized: UInt64 = 0
    /// Packets sent on in the other family (`SpliceEngine+FamilyTranslation`).
    public var packetsTranslated: UInt64 = 0
    public var drops: [UInt64] = Array(repeating: 0, count: DropReason.allCases.count)

    public init() {}
    public subscript(reason: DropReason) -> UInt64 {
        get { drops[DropReason.index(reason)] }
        set { drops[DropReason.index(reason)] = newValue }
    }
    public var totalDrops: UInt64 { drops.reduce(0, +) }
}

extension DropReason {
    /// The reason's place in `allCases`: a short scan comparing cases, not a dictionary keyed
    /// by a String-backed enum (which hashes the string on every drop).
    private static let ordered: [DropReason] = allCases
    static func index(_ r: DropReason) -> Int {
        var i = 0
        for c in ordered {
            if c == r { return i }
            i += 1
        }
        return 0 // unreachable: every reason is in allCases
    }
}
