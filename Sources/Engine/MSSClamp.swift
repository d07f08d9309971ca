import Wire

/// MSS clamping (`tsmp proxy --clamp-mss`, on by default): the MSS option of the SYNs the
/// proxy forwards is lowered to what the links the proxy knows can carry, so neither end sends
/// segments the gateway's own interfaces would refuse (RFC 9293 §3.7.1: the MSS an end
/// announces bounds the segments sent to it; RFC 6691 §2: it counts no IP or TCP options).
///
/// A link behind another router is not known here: that is what ICMP "fragmentation needed"
/// is for (`SpliceEngine+ICMP`). Options are rewritten in place (no resize); a SYN without an
/// MSS option is left alone (its peer assumes 536, RFC 9293 §3.7.1).
public struct MSSClamp: Sendable, Hashable {
    /// The most a SYN toward the server may announce (the uplink's MTU less 40), nil: no limit.
    public var towardServer: UInt16?
    /// The most a SYN-ACK toward a device may announce (the smallest device link's MTU less
    /// 40), nil: no limit. The proxy's own SYN-ACK to a migration's new device obeys it too.
    public var towardDevice: UInt16?

    public init(towardServer: UInt16? = nil, towardDevice: UInt16? = nil) {
        self.towardServer = towardServer; self.towardDevice = towardDevice
    }

    /// The clamp for links of these MTUs (IPv4: 20 bytes of IP and 20 of TCP header).
    public init(uplinkMTU: Int?, deviceMTUs: [Int]) {
        func mss(_ mtu: Int) -> UInt16 {
            UInt16(clamping: max(mtu, IPFamily.ipv4.minimumMTU) - IPFamily.ipv4.headerLength - TCPSegment.minimumHeaderLength)
        }
        self.init(towardServer: uplinkMTU.map(mss), towardDevice: deviceMTUs.min().map(mss))
    }

    /// An IPv4 limit for a segment of `family`: IPv6's header is 20 bytes longer (RFC 8200 §3),
    /// so the same link carries 20 bytes less of TCP payload.
    static func limit(_ ipv4: UInt16?, family: IPFamily) -> UInt16? {
        guard let ipv4 else { return nil }
        let extra = UInt16(family.headerLength - IPFamily.ipv4.headerLength)
        return ipv4 > extra ? ipv4 - extra : ipv4
    }

    /// Lowers the MSS option of `tcp` (a SYN) to `limit`; true when it changed.
    @discardableResult
    static func clamp(_ tcp: TCPSegment, to limit: UInt16?) -> Bool {
        guard let limit else { return false }
        let options = tcp.options
        guard let (slot, value) = options.first(kind: TCPOptionKind.maximumSegmentSize),
              case .maximumSegmentSize(let mss) = value, mss > limit else { return false }
        options.setMaximumSegmentSize(slot, limit)
        return true
    }
}

extension SpliceEngine {
    /// Clamps a device's opening SYN toward the server (`MSSClamp.towardServer`).
    func clampSynTowardServer(_ packet: TCPIPPacket) {
        let limit = MSSClamp.limit(config.mssClamp?.towardServer, family: packet.family)
        if MSSClamp.clamp(packet.tcp, to: limit) { counters.synsClamped &+= 1 }
    }

    /// Clamps a server's SYN-ACK toward the device (`MSSClamp.towardDevice`).
    func clampSynTowardDevice(_ packet: TCPIPPacket) {
        let limit = MSSClamp.limit(config.mssClamp?.towardDevice, family: packet.family)
        if MSSClamp.clamp(packet.tcp, to: limit) { counters.synsClamped &+= 1 }
    }

    /// The MSS the proxy's own SYN-ACK to a new device of `family` announces, clamped.
    func clampedTowardDevice(_ mss: UInt16, family: IPFamily) -> UInt16 {
        guard let limit = MSSClamp.limit(config.mssClamp?.towardDevice, family: family) else { return mss }
        return min(mss, limit)
    }
}
