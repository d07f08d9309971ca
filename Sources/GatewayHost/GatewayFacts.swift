import Wire

/// What the gateway looks like before setup: the facts `GatewayPlan.changes(given:)` needs.
public struct GatewayFacts: Sendable, Equatable {
    /// Which of the NAT addresses and the VIPs the gateway owns.
    public var ownedAddresses: Set<IPAddress>
    /// The kernel's `pref 0 lookup local` rule as it is now (its protocol tag matters when
    /// restoring it), or nil when there is none at pref 0.
    public var localRule: NetlinkRule?
    /// The same for IPv6 (`ip -6 rule`).
    public var localRule6: NetlinkRule? = .kernelLocal6
    /// net.ipv6.conf.all.forwarding as read now (matters only with an IPv6 NAT address).
    public var ipv6Forward: String = "1"
    public var tunIsUp: Bool
    public var tunMTU: UInt32
    /// net.ipv4.ip_forward as read now.
    public var ipForward: String
    /// net.ipv4.conf.TUN.rp_filter as read now (matters only with a TUN address).
    public var tunRPFilter: String
    /// net.ipv4.conf.TUN.accept_local as read now (matters only with a TUN address).
    public var tunAcceptLocal: String = "0"
    /// net.ipv6.conf.TUN.addr_gen_mode as read now; nil when the kernel has no IPv6 (booted
    /// with ipv6.disable=1: no such file, and no IPv6 chatter to prevent).
    public var tunAddrGenMode: String?
    /// net.ipv4.conf.UPLINK.src_valid_mark as read now (matters only with the kernel path).
    public var uplinkSrcValidMark: String = "1"

    public init(ownedAddresses: Set<IPAddress> = [], localRule: NetlinkRule? = .kernelLocal,
                tunIsUp: Bool = false, tunMTU: UInt32 = 1500, ipForward: String = "0",
                tunRPFilter: String = "0") {
        self.ownedAddresses = ownedAddresses
        self.localRule = localRule
        self.tunIsUp = tunIsUp
        self.tunMTU = tunMTU
        self.ipForward = ipForward
        self.tunRPFilter = tunRPFilter
    }
}
