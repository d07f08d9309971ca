import Foundation
import Logging
import Telemetry
import Testing

/// Log lines a machine can split (issue "Operator experience": `migration.reason=the new device
/// did not ...` was unparseable) and the JSON format.
@Suite("Log lines")
struct LogLineTests {
    @Test("values with spaces, quotes, '=' or newlines are quoted and escaped; safe ones stay bare")
    func quoting() {
        #expect(LogLine.quoted("10.1.0.2") == "10.1.0.2")
        #expect(LogLine.quoted("the new device did not connect") == #""the new device did not connect""#)
        #expect(LogLine.quoted(#"say "hi""#) == #""say \"hi\"""#)
        #expect(LogLine.quoted("a=b") == #""a=b""#)
        #expect(LogLine.quoted("two\nlines") == #""two\nlines""#)
        #expect(LogLine.quoted("") == #""""#)
        #expect(LogLine.quoted("back\\slash") == #""back\\slash""#)
    }

    @Test("a text line: time, level, label, sorted metadata, source, message")
    func textLine() {
        let line = LogLine.text(time: "T", level: .warning, label: "tsmp.proxy",
                                metadata: ["migration.reason": "the new device did not connect", "migration.id": "3"],
                                source: "Gateway", message: "rolled back")
        #expect(line == #"T warning tsmp.proxy: migration.id=3 migration.reason="the new device did not connect" [Gateway] rolled back"#)
    }

    @Test("a JSON line parses back with every field")
    func jsonLine() throws {
        let line = LogLine.json(time: "T", level: .info, label: "tsmp.proxy",
                                metadata: ["flow.id": "7", "peers": .array(["a", "b"])], source: "Gateway", message: "MTR \"sent\"")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["message"] as? String == "MTR \"sent\"")
        #expect(object["flow.id"] as? String == "7")
        #expect(object["peers"] as? [String] == ["a", "b"])
        #expect(!line.contains("\n"))
    }

    @Test("the handler merges its metadata with the event's and writes one line per event")
    func handler() {
        let sink = LineSink.memory()
        var logger = Logger(label: "t") { LineLogHandler(label: $0, format: .text, sink: sink) }
        logger[metadataKey: "tun"] = "tsmp0"
        logger.info("forwarding", metadata: ["nat": "10.2.0.1"])
        logger.debug("not at info")
        #expect(sink.lines.count == 1)
        #expect(sink.lines[0].hasSuffix(" info t: nat=10.2.0.1 tun=tsmp0 [TelemetryTests] forwarding\n"))
    }
}
