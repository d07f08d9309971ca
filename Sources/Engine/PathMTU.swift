import Wire

/// Path MTUs the engine learned for a flow from ICMP "fragmentation needed" (RFC 1191 §6.1),
/// per direction of the segments it concerns. They only go down (RFC 1191 §6.3: an increase is
/// learned by probing, which the proxy leaves to the ends) and never below `floor`.
struct LearnedPathMTU: Sendable, Equatable {
    /// MTU of the path from the proxy to the server (about segments toward the server).
    var towardServer: Int?
    /// MTU of the path from the proxy to the device (about segments toward the device).
    var towardDevice: Int?

    /// The least MTU the proxy's own segments obey whatever ICMP claims: Linux's default
    /// `net.ipv4.route.min_pmtu` (552), against forged messages shrinking segments to nothing
    /// (RFC 5927 §7.2).
    static let floor = 552

    /// Lowers `current` to `reported` (RFC 1191 §6.3); a report of 0 (a router older than
    /// RFC 1191) uses the plateau below the quoted datagram's length (RFC 1191 §7).
    static func lowered(_ current: Int?, reported: UInt16, quotedLength: Int, family: IPFamily) -> Int? {
        var mtu = Int(reported)
        if mtu == 0 { mtu = plateau(below: quotedLength) }
        guard mtu >= family.minimumMTU else { return current }
        return min(current ?? Int.max, mtu)
    }

    /// RFC 1191 §7, table 7-1: the common MTU plateaus.
    static let plateaus = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68]
    static func plateau(below length: Int) -> Int {
        plateaus.first { $0 < length } ?? 68
    }

    /// The next-hop MTU to tell the other side, whose segments carry another family's header
    /// (RFC 7915 §4.2, §5.2 for the v4/v6 case): same payload room. For v4 to v4 unchanged.
    static func translate(_ mtu: UInt16, from: IPFamily, to: IPFamily) -> UInt16 {
        guard mtu != 0 else { return 0 }
        let adjusted = Int(mtu) - from.headerLength + to.headerLength
        return UInt16(clamping: max(adjusted, to.minimumMTU))
    }

    /// Payload bytes per segment on a path of `mtu` for TCP headers carrying `optionBytes`.
    static func segmentPayload(mtu: Int, family: IPFamily, optionBytes: Int) -> Int {
        max(mtu, floor) - family.headerLength - TCPSegment.minimumHeaderLength - optionBytes
    }
}
