import Engine
import Telemetry

/// The migration metrics beside the engine's (`EngineMetrics`), from the engines' own counts
/// (`MigrationStats`): `tsmp_migrations_total{result}`, the duration, stall and cache-size
/// histograms, and the flow table's limit beside `tsmp_flows`.
public enum MigrationMetrics {
    public static func render(_ stats: MigrationStats, flowsLimit: Int) -> String {
        var out = PrometheusText()
        let results = [MigrationPhase.spliced, .rolledBack, .aborted].map(\.rawValue)
        out.counter("tsmp_migrations", help: "Finished migrations, by result (the phase they ended in)",
                    results.map { (labels: [("result", $0)], value: stats.results[$0] ?? 0) })
        out.histogram("tsmp_migration_duration_seconds", help: "Seconds from a migration's request to its end",
                      buckets: stats.duration.cumulative, sum: stats.duration.sum)
        out.histogram("tsmp_migration_stall_seconds", help: "Seconds the server saw a zero window during a migration (paused to end)",
                      buckets: stats.stall.cumulative, sum: stats.stall.sum)
        out.histogram("tsmp_migration_cache_bytes", help: "Bytes a migration delivered from the proxy's copy and cache",
                      buckets: stats.cacheBytes.cumulative, sum: stats.cacheBytes.sum)
        out.gauge("tsmp_flows_limit", help: "Managed flows the table may hold (new ones beyond are dropped: flowTableFull)", [(labels: [], value: Double(flowsLimit))])
        return out.text
    }
}
