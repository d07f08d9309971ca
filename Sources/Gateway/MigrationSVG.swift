import ControlPlane
import Engine
import Forwarding
import Foundation

/// The sequence-time graph of one migration (the picture tcptrace or Wireshark's "Stevens"
/// view would give, for both sub-connections at once): x is seconds after the request, y the
/// offset in the server's stream. Server data, the old and the new device's acks and the
/// proxy's cache deliveries are separate series (`<g class="series" data-series=NAME>`, one
/// mark per packet: a vertical bar for a segment, a dot for an ack); each phase is a labelled
/// vertical line (`data-phase`), the cut a horizontal one. Pure: text in, text out.
public enum MigrationSVG {
    static let width = 900.0, height = 520.0
    static let left = 90.0, right = 170.0, top = 40.0, bottom = 50.0

    static let colors: [MigrationTimeline.Series: String] = [
        .serverData: "#1f77b4", .oldDeviceAck: "#d62728", .newDeviceAck: "#2ca02c",
        .proxyToNewDevice: "#ff7f0e", .proxyToOldDevice: "#9467bd",
    ]

    public static func render(_ report: MigrationReport, _ timeline: MigrationTimeline) -> String {
        let points = timeline.points.filter { $0.seconds.isFinite }
        let tEnd = max(points.map(\.seconds).max() ?? 0, report.phases.map(\.seconds).max() ?? 0, 0.001)
        let offsets = points.flatMap { [$0.offset, $0.offset + UInt64(max(0, $0.length))] } + [report.cutOffsetToDevice].compactMap { $0 }
        let lo = Double(offsets.min() ?? 0), hi = max(Double(offsets.max() ?? 1), lo + 1)
        let plotW = width - left - right, plotH = height - top - bottom
        func x(_ s: Double) -> Double { left + s / tEnd * plotW }
        func y(_ o: Double) -> Double { top + plotH - (o - lo) / (hi - lo) * plotH }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
            <title>\(escape("migration \(report.id) of flow \(report.flow): \(report.phase.rawValue)"))</title>
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(left))" y="20" font-size="13">\(escape("migration \(report.id), flow \(report.flow): \(report.oldDevice) -> \(report.newDevice?.description ?? report.target.description), \(report.phase.rawValue)"))</text>
            <g class="axes" stroke="black">
            <line x1="\(f(left))" y1="\(f(top + plotH))" x2="\(f(left + plotW))" y2="\(f(top + plotH))"/>
            <line x1="\(f(left))" y1="\(f(top))" x2="\(f(left))" y2="\(f(top + plotH))"/>
            </g>
            <text x="\(f(left + plotW / 2))" y="\(f(height - 12))" text-anchor="middle">seconds after the request (\(String(format: "%.3f", tEnd)) s shown)</text>
            <text x="\(f(left))" y="\(f(top - 6))" text-anchor="end">\(Int64(hi)) B</text>
            <text x="\(f(left - 4))" y="\(f(top + plotH))" text-anchor="end">\(Int64(lo)) B</text>

            """
        // The phases: one labelled line each.
        svg += "<g class=\"phases\">\n"
        for (i, p) in report.phases.enumerated() {
            let px = x(p.seconds)
            svg += "<line data-phase=\"\(p.phase.rawValue)\" x1=\"\(f(px))\" y1=\"\(f(top))\" x2=\"\(f(px))\" y2=\"\(f(top + plotH))\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n"
            svg += "<text data-phase=\"\(p.phase.rawValue)\" x=\"\(f(px + 2))\" y=\"\(f(top + 12 + Double(i % 6) * 12))\" fill=\"#555\">\(escape(p.phase.rawValue)) \(String(format: "%.3f", p.seconds))s</text>\n"
        }
        svg += "</g>\n"
        if let cut = report.cutOffsetToDevice {
            let cy = y(Double(cut))
            svg += "<g class=\"cut\"><line x1=\"\(f(left))\" y1=\"\(f(cy))\" x2=\"\(f(left + plotW))\" y2=\"\(f(cy))\" stroke=\"black\" stroke-dasharray=\"2 2\"/>"
            svg += "<text x=\"\(f(left + plotW + 4))\" y=\"\(f(cy + 4))\">cut \(cut) B</text></g>\n"
        }
        // The series, one group each (empty groups too, so a reader sees what was not there).
        for (k, series) in MigrationTimeline.Series.allCases.enumerated() {
            let color = colors[series] ?? "black"
            let mine = points.filter { $0.series == series }
            svg += "<g class=\"series\" data-series=\"\(series.rawValue)\" data-points=\"\(mine.count)\" stroke=\"\(color)\" fill=\"\(color)\">\n"
            for p in mine {
                let px = x(p.seconds), py = y(Double(p.offset))
                if p.length > 0 {
                    svg += "<line x1=\"\(f(px))\" y1=\"\(f(py))\" x2=\"\(f(px))\" y2=\"\(f(y(Double(p.offset) + Double(p.length))))\" stroke-width=\"1.5\"/>\n"
                } else {
                    svg += "<circle cx=\"\(f(px))\" cy=\"\(f(py))\" r=\"1.8\"/>\n"
                }
            }
            let ly = top + 14 + Double(k) * 16
            svg += "<rect x=\"\(f(left + plotW + 10))\" y=\"\(f(ly - 8))\" width=\"10\" height=\"8\"/>"
            svg += "<text x=\"\(f(left + plotW + 24))\" y=\"\(f(ly))\" stroke=\"none\" fill=\"black\">\(series.rawValue) (\(mine.count))</text>\n"
            svg += "</g>\n"
        }
        if timeline.dropped > 0 {
            svg += "<text x=\"\(f(left + plotW + 10))\" y=\"\(f(top + plotH))\">\(timeline.dropped) packets not kept</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    /// XML text: &, <, > and quotes escaped.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// `GET /v1/migrations/timeline?id=N`: a migration's report and its packets.
public struct MigrationPicture: Codable, Sendable {
    public var report: MigrationReport
    public var timeline: MigrationTimeline
    public init(report: MigrationReport, timeline: MigrationTimeline) { self.report = report; self.timeline = timeline }
}

extension ControlAPI {
    static func timeline(_ request: HTTPEndpoint.Request, engine: any EngineAccess, encoder: JSONEncoder) async -> HTTPEndpoint.Response {
        guard let text = request.query["id"], let raw = UInt64(text) else {
            return .error(.badRequest, "give id=N, a migration id (tsmp migrations)")
        }
        let id = MigrationID(raw)
        guard let report = await engine.reports([id]).first else { return .error(.notFound, "migration \(id) is not known") }
        let timeline = await engine.timeline(id) ?? MigrationTimeline()
        return json(encoder, MigrationPicture(report: report, timeline: timeline))
    }
}
