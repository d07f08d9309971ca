#if canImport(Glibc)
import Glibc
#endif
import CShims
import PacketIO
import Wire

/// A ctnetlink socket (NETLINK_NETFILTER) in the calling thread's network namespace, for the
/// one change tsmp makes to the gateway's connection tracking: a kernel-path flow's entry on
/// the NAT side is told to be liberal about sequence numbers.
///
/// Why: while the kernel path forwards a flow, its rewrite runs before conntrack (prerouting,
/// raw priority), so conntrack counts the flow's segments on the device side's entry and the
/// NAT side's entry (NAT address and port <-> server) sees none of them. When the proxy takes
/// the flow back, that entry's windows are megabytes behind, and a gateway firewall with
/// `ct state invalid drop` in its forwarding drops the server's segments and the proxy's ACKs
/// (the flow stalls until the migration rolls back). A liberal entry keeps its state
/// (`established`) and accepts any sequence number.
/// Not thread-safe: one session per thread or queue.
public final class ConntrackSession {
    private let socket: OpaquePointer

    public init() throws(SystemError) {
        var socket: OpaquePointer?
        let r = tsmp_nl_open_netfilter(&socket)
        if r < 0 { throw SystemError("open netlink netfilter socket", errno: -r) }
        guard let socket else { throw SystemError("open netlink netfilter socket", errno: ENOMEM) }
        self.socket = socket
    }

    deinit { tsmp_nl_close(socket) }

    /// Marks the TCP entry whose original direction is `source` -> `destination` liberal both
    /// ways; throws ENOENT when conntrack has no such entry (it tracks nothing in this
    /// namespace, or the entry expired).
    public func setLiberal(from source: IPv4Endpoint, to destination: IPv4Endpoint) throws(SystemError) {
        let r = tsmp_nl_ct_tcp_liberal(socket, source.address.value, source.port, destination.address.value, destination.port)
        if r < 0 { throw SystemError("conntrack: be liberal on tcp \(source) -> \(destination)", errno: -r) }
    }
}
