/// Gateway: the proxy service, which ties host setup (GatewayHost) and the data plane
/// (Forwarding) together and serves what runs. It owns:
/// - the proxy's life: `ProxyService` (TUN, kernel configuration, data plane, endpoints; the
///   same in reverse on SIGINT/SIGTERM, `SignalWaiter`) and its options;
/// - the local control API on the root-only Unix socket (`ControlAPI`: flows, status,
///   events, migrations, `MigrationSVG` timelines) and its CLI side (`ControlClient`);
/// - the device-facing mTLS API (`DeviceAPI`: MFRs and the MTR, TSMP draft §4.2.1), with who
///   owns a flow decided by what the proxy saw (`DeviceSightings`), and reachability checks;
/// - metrics (`EngineMetrics`, `MigrationMetrics`) and the operator's text (`OperatorText`).
///
/// Invariants of the module:
/// - Endpoints reach the engines only through `EngineAccess`, never a `SpliceEngine`, and
///   never block a packet thread: every answer is an `await` on a loop's command queue.
/// - A request is validated as a whole before anything starts; a refusal names its reason
///   and changes nothing.
/// - Startup failures undo the steps before them (the gateway is left as it was); the kernel
///   configuration is removed last on the way out, after the data plane stopped.
public enum GatewayModule {}
