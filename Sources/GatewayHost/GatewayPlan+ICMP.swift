import Wire

/// The ICMP errors about managed flows that must reach the proxy (`SpliceEngine+ICMP`, RFC
/// 5508 §4): without them a router behind the gateway with a narrower link black-holes every
/// upload (its "fragmentation needed" goes to the NAT address, which nothing answers), and a
/// connect() to a closed port waits for its SYN timeout.
///
/// - Replies: `iif UPLINK to NAT/32 ipproto icmp lookup TABLE` at `Priority.replyICMP`, just
///   above the TCP reply rule (and so above a moved `lookup local`): errors about segments the
///   proxy sent servers. The engine drops what matches no flow, with a reason.
/// - Transparent mode: `iif DEVICE ipproto icmp lookup TABLE`, one per device interface, after
///   the TCP rules: errors from a device's side about segments the proxy sent it. A rule can't
///   match an ICMP type, so a device's pings go through the proxy too, which passes every ICMP
///   message that is not an error about a managed flow on unchanged.
/// - IPv6 (with an IPv6 NAT address): the same two for ICMPv6 (`ip -6 rule`, RFC 4443), which
///   carries IPv6's only path MTU signal (RFC 8201). ICMPv6 is also neighbour discovery, and a
///   rule cannot match a type: a router's neighbour advertisement to an NAT address the
///   gateway owns must reach the gateway's own stack, or the gateway never learns the router's
///   link address and nothing reaches the servers. So both come after `lookup local` (pref 0,
///   or 10050 when moved): the reply rule at `Priority.replyICMPv6`. With a dedicated IPv6 NAT
///   address (routed to the gateway, not on an interface) errors reach the proxy; with one the
///   gateway owns they are the gateway's, and path MTU discovery through the proxy needs the
///   dedicated kind.
extension GatewayPlan {
    /// ICMP's IP protocol number (RFC 792).
    public static let icmpProtocol: UInt8 = 1
    /// ICMPv6's (RFC 4443).
    public static let icmpv6Protocol: UInt8 = 58

    /// The rule for ICMP toward the NAT address.
    var icmpReplyRule: NetlinkRule { icmpReplyRule(.ipv4)! }

    /// The rule for ICMP of `family` toward that family's NAT address; nil without one.
    func icmpReplyRule(_ family: IPFamily) -> NetlinkRule? {
        guard let natAddress = natAddresses.first(where: { $0.family == family }) else { return nil }
        return NetlinkRule(priority: family == .ipv4 ? Priority.replyICMP : Priority.replyICMPv6, table: table,
                           inputInterface: uplinkInterface,
                           destination: .host(natAddress), ipProtocol: family == .ipv4 ? Self.icmpProtocol : Self.icmpv6Protocol,
                           protocolTag: NetlinkProtocolTag.tsmp)
    }

    /// The rules for ICMP of `family` from device interfaces, from `first` on (after the TCP rules).
    func deviceICMPRules(from first: UInt32, family: IPFamily = .ipv4) -> [NetlinkRule] {
        guard !interceptPorts.isEmpty else { return [] }
        return deviceInterfaces.enumerated().map { i, device in
            NetlinkRule(priority: first + UInt32(i), table: table, inputInterface: device,
                        ipProtocol: family == .ipv4 ? Self.icmpProtocol : Self.icmpv6Protocol,
                        protocolTag: NetlinkProtocolTag.tsmp, family: family)
        }
    }
}

extension GatewayPlan.Priority {
    /// ICMP toward the NAT address, right before the TCP reply rule.
    public static let replyICMP: UInt32 = reply - 1
    /// ICMPv6 toward the IPv6 NAT address: after the moved `lookup local` (see above).
    public static let replyICMPv6: UInt32 = movedLocal + 1
}
