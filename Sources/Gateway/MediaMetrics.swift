import Media
import Telemetry

/// The media relay's metrics beside the engine's (`--intercept rtsp/PORT`): sessions, what
/// was relayed and dropped (by reason), migrations by result, quality alerts, and each
/// session's loss and jitter from its player's latest RTCP receiver report (RFC 3550 §6.4.1).
public enum MediaMetrics {
    public static func render(_ sessions: [MediaSessionSummary], _ c: MediaRelayCounters) -> String {
        var out = PrometheusText()
        out.gauge("tsmp_media_sessions", help: "RTSP sessions the media relay holds", [(labels: [], value: Double(sessions.count))])
        out.counter("tsmp_media_sessions_started", help: "RTSP control connections the relay took on (one session each)",
                    [(labels: [], value: c.sessionsStarted)])
        out.counter("tsmp_media_packets_relayed", help: "RTP and RTCP packets relayed, by protocol",
                    [(labels: [("protocol", "rtp")], value: c.rtpRelayed), (labels: [("protocol", "rtcp")], value: c.rtcpRelayed)])
        out.counter("tsmp_media_dropped", help: "Packets, messages and connections the relay refused, by reason", [
            (labels: [("reason", "bad_rtp")], value: c.badRTP), (labels: [("reason", "bad_rtcp")], value: c.badRTCP),
            (labels: [("reason", "bad_rtsp")], value: c.badRTSP), (labels: [("reason", "unknown_source")], value: c.unknownSource),
            (labels: [("reason", "connection_limit")], value: c.refusedConnections),
        ])
        out.counter("tsmp_media_migrations", help: "Finished media migrations, by result",
                    [(labels: [("result", "done")], value: c.migrationsDone), (labels: [("result", "rolled-back")], value: c.migrationsRolledBack)])
        out.counter("tsmp_media_quality_alerts", help: "Sessions whose RTCP loss stayed above --media-loss-threshold",
                    [(labels: [], value: c.qualityAlerts)])
        let reported = sessions.filter { $0.fractionLost != nil }
        out.gauge("tsmp_media_fraction_lost", help: "Fraction of RTP lost in the player's latest receiver report, by session",
                  reported.map { (labels: [("session", $0.id.description)], value: $0.fractionLost ?? 0) })
        out.gauge("tsmp_media_jitter", help: "Interarrival jitter (RTP timestamp units) in the player's latest receiver report, by session",
                  reported.map { (labels: [("session", $0.id.description)], value: Double($0.jitter ?? 0)) })
        let alerted = sessions.filter { $0.alertFractionLost != nil }
        out.gauge("tsmp_media_alert_fraction_lost", help: "The fraction lost that raised a session's latest quality alert",
                  alerted.map { (labels: [("session", $0.id.description)], value: $0.alertFractionLost ?? 0) })
        return out.text
    }
}
