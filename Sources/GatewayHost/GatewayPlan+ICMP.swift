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
extension GatewayPlan {
    /// ICMP's IP protocol number (RFC 792).
    public static let icmpProtocol: UInt8 = 1

    /// The rule for ICMP toward the NAT address.
    var icmpReplyRule: NetlinkRule {
        NetlinkRule(priority: Priority.replyICMP, table: table, inputInterface: uplinkInterface,
                    destination: .host(nat), ipProtocol: Self.icmpProtocol, protocolTag: NetlinkProtocolTag.tsmp)
    }

    /// The rules for ICMP from device interfaces, from `first` on (after the TCP rules).
    func deviceICMPRules(from first: UInt32) -> [NetlinkRule] {
        guard !interceptPorts.isEmpty else { return [] }
        return deviceInterfaces.enumerated().map { i, device in
            NetlinkRule(priority: first + UInt32(i), table: table, inputInterface: device,
                        ipProtocol: Self.icmpProtocol, protocolTag: NetlinkProtocolTag.tsmp)
        }
    }
}

extension GatewayPlan.Priority {
    /// ICMP toward the NAT address, right before the TCP reply rule.
    public static let replyICMP: UInt32 = reply - 1
}
