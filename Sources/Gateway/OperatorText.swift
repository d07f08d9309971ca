import Engine
import Forwarding
import Foundation

/// The human-readable lines of `tsmp migrations` and `tsmp events` (JSON is the API's own).
public enum OperatorText {
    /// One row per migration: where it is or how it ended, the time it took (to its last
    /// phase), how long the server was paused, the bytes the proxy cached, the cut offsets.
    public static func migrationTable(_ listing: MigrationListing) -> String {
        var rows: [[String]] = [["ID", "FLOW", "PHASE", "FROM", "TO", "TIME", "STALL", "CACHED", "CUT-TO-DEVICE", "CUT-TO-SERVER", "REASON"]]
        for r in listing.migrations {
            let end = r.phases.last?.seconds ?? 0
            let paused = r.phases.first { $0.phase == .paused }?.seconds
            rows.append([r.id.description, r.flow.description, r.phase.rawValue, r.oldDevice.description,
                         r.newDevice?.description ?? r.target.description, seconds(end),
                         paused.map { seconds(max(0, end - $0)) } ?? "-", String(r.bytesCached),
                         r.cutOffsetToDevice.map(String.init) ?? "-", r.cutOffsetToServer.map(String.init) ?? "-",
                         r.reason ?? ""])
        }
        var out = table(rows)
        let finished = listing.migrations.count - listing.running
        out += "\n\n\(listing.running) running, \(finished) finished shown"
        return out
    }

    /// One line per event, like `conntrack -E`: time, what, the flow, and what changed.
    public static func eventLine(_ e: EventRecord) -> String {
        let time = clock(e.time)
        let ev = e.event
        let ends = "\(ev.device?.description ?? "?") -> \(ev.server?.description ?? "?")"
        switch ev.kind {
        case .flowNew:
            return "\(time) [NEW] flow \(ev.flow) \(ends)"
        case .flowDestroy:
            return "\(time) [DESTROY] flow \(ev.flow) \(ends) \(ev.detail ?? "")".trimmingTrailingSpaces
        case .migrationPhase:
            var line = "\(time) [MIGRATION] migration \(ev.migration?.description ?? "?") flow \(ev.flow) \(ev.phase?.rawValue ?? "?")"
            if let d = ev.detail { line += " (\(d))" }
            return line
        }
    }

    /// "HH:MM:SS.mmm" in UTC.
    static func clock(_ unix: Double) -> String {
        guard unix.isFinite, unix >= 0 else { return "--:--:--.---" }
        let ms = Int64((unix * 1000).rounded(.down))
        let day = ms % 86_400_000
        return String(format: "%02lld:%02lld:%02lld.%03lld", day / 3_600_000, day / 60_000 % 60, day / 1000 % 60, day % 1000)
    }

    static func seconds(_ s: Double) -> String { String(format: "%.3fs", s) }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingTrailingSpaces
        }.joined(separator: "\n")
    }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
