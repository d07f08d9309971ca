/// Telemetry: what the services tell their operators, shared by the proxy, the namespace
/// service and the agent: log lines (`LineLogHandler`, `LogLine`: quoted `key=value` or JSON
/// with `--log-format json`), Prometheus text exposition (`PrometheusText`), build info
/// (`BuildInfo`: `--version`, `tsmp_build_info`), and systemd readiness, watchdog and stopping
/// notices (`ServiceNotifier`, sd_notify).
///
/// Invariants of the module:
/// - It depends on swift-log only; nothing here blocks a caller for long (a notice is one
///   datagram, a log line one write).
/// - Log values with spaces or quotes are quoted, so every line parses.
public enum TelemetryModule {}
