import Foundation
import Logging
import Synchronization

/// How a log line is written (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `TIME LEVEL LABEL: key=value key="value with spaces" [SOURCE] message`: what a person
    /// reads, and what `logfmt` parsers split (values with spaces, quotes, `=` or control
    /// characters are quoted and escaped).
    case text
    /// One JSON object per line: `time`, `level`, `label`, `source`, `message`, then the
    /// metadata keys (values as strings, lists and objects as JSON arrays and objects).
    case json
}

/// A `LogHandler` writing one line per event to a file handle (stderr for the services), in
/// ``LogFormat``. Lines are written whole (one `write` each, under a lock), so lines from
/// several threads never interleave.
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    public let format: LogFormat
    private let sink: LineSink

    public init(label: String, format: LogFormat, sink: LineSink = .standardError) {
        self.label = label
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let time = Self.timestamp()
        let line: String
        switch format {
        case .text:
            line = LogLine.text(time: time, level: event.level, label: label, metadata: merged, source: event.source,
                                message: event.message.description)
        case .json:
            line = LogLine.json(time: time, level: event.level, label: label, metadata: merged, source: event.source,
                                message: event.message.description)
        }
        sink.write(line + "\n")
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

/// Where log lines go: a file handle, or memory (tests).
public final class LineSink: Sendable {
    private let handle: FileHandle?
    private let captured = Mutex<[String]>([])
    private let lock = Mutex(())

    public static let standardError = LineSink(handle: .standardError)
    public init(handle: FileHandle?) { self.handle = handle }
    /// A sink that keeps the lines (for tests).
    public static func memory() -> LineSink { LineSink(handle: nil) }

    public func write(_ line: String) {
        guard let handle else {
            captured.withLock { $0.append(line) }
            return
        }
        lock.withLock { _ in handle.write(Data(line.utf8)) }
    }

    public var lines: [String] { captured.withLock { $0 } }
}
