import Wire
import CLibpcap

/// The link-layer header types a pcap file may use that we can take IP packets from, and how
/// to find the IP packet inside a frame of each (tcpdump.org/linktypes.html).
///
/// Invariants: `locateIP` never reads outside `frame` and never traps, whatever the bytes;
/// the range it returns lies inside `frame` and starts at an IPv4 or IPv6 version nibble.
public enum PcapLinkType: Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// LINKTYPE_RAW (101, DLT_RAW 12 on Linux): the frame is the IP packet.
    case raw
    /// LINKTYPE_IPV4 (228) / LINKTYPE_IPV6 (229): the frame is the IP packet.
    case ipv4, ipv6
    /// LINKTYPE_ETHERNET (1): 14-byte header, then 802.1Q / 802.1ad tags, then EtherType.
    case ethernet
    /// LINKTYPE_LINUX_SLL (113): Linux "cooked" v1, 16 bytes, packet type at 0, protocol at 14.
    case linuxSLL
    /// LINKTYPE_LINUX_SLL2 (276): Linux "cooked" v2, 20 bytes, protocol at 0, packet type at 10.
    case linuxSLL2
    /// LINKTYPE_NULL (0): BSD loopback, 4-byte address family in the capturing host's order.
    case null
    /// LINKTYPE_LOOP (108): OpenBSD loopback, 4-byte address family in network order.
    case loop

    /// The type libpcap reports (`pcap_datalink`, a DLT_ value), or nil if unsupported.
    public init?(dlt: Int32) {
        switch dlt {
        case DLT_RAW, 101: self = .raw
        case DLT_IPV4: self = .ipv4
        case DLT_IPV6: self = .ipv6
        case DLT_EN10MB: self = .ethernet
        case DLT_LINUX_SLL: self = .linuxSLL
        case DLT_LINUX_SLL2: self = .linuxSLL2
        case DLT_NULL: self = .null
        case DLT_LOOP: self = .loop
        default: return nil
        }
    }

    /// The LINKTYPE_ value stored in a file's header.
    public var fileValue: UInt32 {
        switch self {
        case .raw: 101
        case .ipv4: 228
        case .ipv6: 229
        case .ethernet: 1
        case .linuxSLL: 113
        case .linuxSLL2: 276
        case .null: 0
        case .loop: 108
        }
    }

    public var description: String {
        switch self {
        case .raw: "RAW"
        case .ipv4: "IPV4"
        case .ipv6: "IPV6"
        case .ethernet: "EN10MB"
        case .linuxSLL: "LINUX_SLL"
        case .linuxSLL2: "LINUX_SLL2"
        case .null: "NULL"
        case .loop: "LOOP"
        }
    }

    /// Where the IP packet is in `frame`, or why the frame is skipped.
    public enum Located: Equatable, Sendable {
        case ip(Range<Int>, PacketDirection)
        case skip(PcapSkipReason)
    }

    /// Finds the IP packet in `frame` and the direction the capture recorded (SLL "outgoing"
    /// is `.outbound`, everything else `.inbound`). Trailing bytes past the IP header's own
    /// length (Ethernet padding) are cut off.
    public func locateIP(in frame: UnsafeRawBufferPointer) -> Located {
        var start = 0
        var etherType: UInt16? = nil   // nil: decide from the version nibble
        var direction = PacketDirection.inbound
        func be16(_ i: Int) -> UInt16 { UInt16(frame[i]) << 8 | UInt16(frame[i + 1]) }

        switch self {
        case .raw, .ipv4, .ipv6:
            break
        case .ethernet:
            guard frame.count >= 14 else { return .skip(.truncatedLinkHeader) }
            start = 14
            var type = be16(12)
            // 802.1Q, 802.1ad and the old QinQ value: 4-byte tags before the real EtherType.
            while type == 0x8100 || type == 0x88A8 || type == 0x9100 {
                guard frame.count >= start + 4 else { return .skip(.truncatedLinkHeader) }
                type = be16(start + 2)
                start += 4
            }
            etherType = type
        case .linuxSLL:
            guard frame.count >= 16 else { return .skip(.truncatedLinkHeader) }
            if be16(0) == 4 { direction = .outbound }
            etherType = be16(14)
            start = 16
        case .linuxSLL2:
            guard frame.count >= 20 else { return .skip(.truncatedLinkHeader) }
            if frame[10] == 4 { direction = .outbound }
            etherType = be16(0)
            start = 20
        case .null, .loop:
            guard frame.count >= 4 else { return .skip(.truncatedLinkHeader) }
            let family = UInt32(frame[0]) << 24 | UInt32(frame[1]) << 16 | UInt32(frame[2]) << 8 | UInt32(frame[3])
            let swapped = self == .loop ? family : family.byteSwapped
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30 (the BSDs).
            func isIPv6(_ f: UInt32) -> Bool { f == 10 || f == 24 || f == 28 || f == 30 }
            if family == 2 || swapped == 2 {
                etherType = 0x0800
            } else if isIPv6(family) || isIPv6(swapped) {
                etherType = 0x86DD
            } else {
                return .skip(.notIP)
            }
            start = 4
        }

        guard start < frame.count else { return .skip(.notIP) }
        let version = frame[start] >> 4
        switch (etherType, version) {
        case (nil, 4), (0x0800, 4), (nil, 6), (0x86DD, 6): break
        default: return .skip(.notIP)
        }
        return .ip(start ..< start + Self.declaredLength(frame, start, version), direction)
    }

    /// The IP packet's length at `start`: the header's own total length when it is plausible
    /// and shorter than what was captured, else everything captured.
    private static func declaredLength(_ frame: UnsafeRawBufferPointer, _ start: Int, _ version: UInt8) -> Int {
        let captured = frame.count - start
        func be16(_ i: Int) -> Int { Int(frame[start + i]) << 8 | Int(frame[start + i + 1]) }
        if version == 4, captured >= 20 {
            let total = be16(2)
            if total >= 20 && total < captured { return total }
        } else if version == 6, captured >= 40 {
            let payload = be16(4)   // 0: jumbogram or TSO capture, keep everything
            if payload > 0 && 40 + payload < captured { return 40 + payload }
        }
        return captured
    }
}

/// Why a pcap record gave no packet.
public enum PcapSkipReason: Sendable, Equatable, CaseIterable {
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    case notIP
    /// Shorter than its link-layer header.
    case truncatedLinkHeader
    /// The IP packet is larger than a slot of the batch read into.
    case tooLargeForBatch
}

/// Records skipped by a `PcapFileReader`, by reason.
public struct PcapSkipCounts: Sendable, Equatable, CustomStringConvertible {
    public var notIP = 0
    public var truncatedLinkHeader = 0
    public var tooLargeForBatch = 0
    public init() {}

    public var total: Int { notIP + truncatedLinkHeader + tooLargeForBatch }

    public subscript(reason: PcapSkipReason) -> Int {
        get {
            switch reason {
            case .notIP: notIP
            case .truncatedLinkHeader: truncatedLinkHeader
            case .tooLargeForBatch: tooLargeForBatch
            }
        }
        set {
            switch reason {
            case .notIP: notIP = newValue
            case .truncatedLinkHeader: truncatedLinkHeader = newValue
            case .tooLargeForBatch: tooLargeForBatch = newValue
            }
        }
    }

    public var description: String {
        "notIP=\(notIP) truncatedLinkHeader=\(truncatedLinkHeader) tooLargeForBatch=\(tooLargeForBatch)"
    }
}
