import Engine
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Gateway
import Testing
import Wire

/// The picture of a migration (`tsmp migrations --show ID --svg FILE`): well-formed SVG whose
/// series, phases and cut can be read back by a parser.
@Suite("Migration SVG")
struct MigrationSVGTests {
    /// What the parser found: series name -> drawn marks and its data-points, the phases labelled, texts.
    final class Reader: NSObject, XMLParserDelegate {
        var series: [String: (marks: Int, declared: Int)] = [:]
        var phases: Set<String> = []
        var texts: [String] = []
        var root: String?
        private var current: String?
        private var text = ""

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root == nil { root = name }
            if name == "g", let s = attributes["data-series"] {
                current = s
                series[s] = (0, Int(attributes["data-points"] ?? "") ?? -1)
            } else if let c = current, name == "line" || name == "circle" {
                series[c]?.marks += 1
            }
            if let p = attributes["data-phase"] { phases.insert(p) }
            if name == "text" { text = "" }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "g" { current = nil }
            if name == "text" { texts.append(text) }
        }
    }

    static func parse(_ svg: String) throws -> Reader {
        let reader = Reader()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = reader
        #expect(parser.parse(), "not well-formed: \(parser.parserError.map { "\($0)" } ?? "?")")
        return reader
    }

    static let report = MigrationReport(
        id: MigrationID(4), flow: FlowID(9), oldDevice: IPEndpoint("10.1.0.2:40000")!,
        target: MigrationTarget(address: IPv4Address(10, 3, 0, 2)), newDevice: IPEndpoint("10.3.0.2:50000"), phase: .spliced,
        phases: [.init(phase: .requested, seconds: 0), .init(phase: .paused, seconds: 0.01), .init(phase: .oldDeviceCut, seconds: 0.02),
                 .init(phase: .newDeviceConnected, seconds: 0.5), .init(phase: .cacheDrained, seconds: 0.6), .init(phase: .spliced, seconds: 0.6)],
        cutOffsetToDevice: 10_000, cutOffsetToServer: 0, bytesCached: 2896, retransmissions: 0, timeouts: 0, reason: "a <reason> & \"quotes\"")

    @Test("each series is a group with one mark per packet; every phase and the cut are labelled; text is escaped")
    func picture() throws {
        let timeline = MigrationTimeline(points: [
            .init(seconds: 0.001, series: .serverData, offset: 10_000, length: 1448),
            .init(seconds: 0.002, series: .serverData, offset: 11_448, length: 1448),
            .init(seconds: 0.003, series: .oldDeviceAck, offset: 10_000, length: 0),
            .init(seconds: 0.51, series: .proxyToNewDevice, offset: 10_000, length: 1448),
            .init(seconds: 0.52, series: .proxyToNewDevice, offset: 11_448, length: 1448),
            .init(seconds: 0.55, series: .newDeviceAck, offset: 12_896, length: 0),
        ], dropped: 3)
        let svg = MigrationSVG.render(Self.report, timeline)
        let r = try Self.parse(svg)
        #expect(r.root == "svg")
        #expect(r.series["server-data"]?.marks == 2 && r.series["server-data"]?.declared == 2)
        #expect(r.series["old-device-ack"]?.marks == 1)
        #expect(r.series["new-device-ack"]?.marks == 1)
        #expect(r.series["proxy-to-new-device"]?.marks == 2)
        #expect(r.series["proxy-to-old-device"]?.marks == 0)
        #expect(r.phases == Set(Self.report.phases.map(\.phase.rawValue)))
        #expect(r.texts.contains("cut 10000 B"))
        #expect(r.texts.contains("3 packets not kept"))
        #expect(!svg.contains("<reason>"))
    }

    @Test("an empty timeline (a migration that never paused) still gives a valid picture with its phases")
    func empty() throws {
        var report = Self.report
        report.phases = [.init(phase: .requested, seconds: 0), .init(phase: .rolledBack, seconds: 0)]
        report.cutOffsetToDevice = nil
        let r = try Self.parse(MigrationSVG.render(report, MigrationTimeline()))
        #expect(r.phases == ["requested", "rolled-back"])
        #expect(r.series.count == MigrationTimeline.Series.allCases.count)
        #expect(r.series.values.allSatisfy { $0.marks == 0 })
    }
}
