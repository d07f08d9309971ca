/// GatewayHost: the gateway's kernel configuration (DESIGN §2, "Into user space"), and
/// nothing that moves packets. It owns:
/// - what must be achieved, checked without the kernel: `GatewayPlan` (policy rules, the TUN
///   route, ICMP errors, the moved `lookup local`) and the changes it means on this gateway
///   (`GatewayPlan.changes(given:)`);
/// - doing and undoing it: `GatewaySetup` (install, teardown), through `NetlinkSession`
///   (links, addresses, routes, rules; C glue in CShims), `Sysctl` and `Nftables` (the kernel
///   path's table as text, `KernelPathTable`);
/// - the record of every change: `GatewayState` in a state file per TUN (`GatewayStateStore`,
///   /run/tsmp/netns-INODE), which `GatewayCleanup` (`tsmp proxy cleanup`) undoes after a
///   crash; the control socket's path beside it (`LocalControlSocket`);
/// - what the proxy needs from the host: capabilities and the TUN node (`ProxyCapabilities`);
///   running code inside another network namespace (`NetlinkNamespace`, for tests).
///
/// Invariants of the module:
/// - A change is written to the state file *before* it is made; a refused or failed install
///   leaves the gateway as it was; undoing something already gone is not an error.
/// - Cleanup removes only what is tsmp's: objects recorded in a state file, rules and routes
///   tagged with protocol 0x74, `tsmp_kernel_path_*` tables; sysctls only from a record.
/// - No engine, no packets, no HTTP: it imports Wire, PacketIO (the syscall funnel), the C
///   shims and Logging only. Its calls block on netlink and nftables, so it is never called
///   from a packet thread (the data plane's kernel-path installer runs it on its own queue).
public enum GatewayHostModule {}
