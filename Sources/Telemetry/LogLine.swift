import Foundation
import Logging

/// The two layouts of a log line (``LogFormat``), as pure functions of an event's parts.
public enum LogLine {
    /// `TIME LEVEL LABEL: k=v ... [SOURCE] message`, metadata sorted by key, values quoted
    /// when they need it (logfmt's rules: spaces, `"`, `=`, `\` or control characters).
    public static func text(time: String, level: Logger.Level, label: String, metadata: Logger.Metadata, source: String,
                            message: String) -> String {
        var out = "\(time) \(level) \(label):"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            out += " \(key)=\(quoted(flatten(value)))"
        }
        return out + " [\(source)] \(message)"
    }

    /// One JSON object: time, level, label, source, message, then the metadata keys.
    public static func json(time: String, level: Logger.Level, label: String, metadata: Logger.Metadata, source: String,
                            message: String) -> String {
        var object: [String: Any] = [:]
        for (key, value) in metadata { object[key] = jsonValue(value) }
        object["time"] = time
        object["level"] = level.rawValue
        object["label"] = label
        object["source"] = source
        object["message"] = message
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return #"{"level":"error","message":"unencodable log line"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A value as logfmt writes it: bare when it is safe, else in double quotes with `"`, `\`
    /// and control characters escaped. An empty value is `""`.
    public static func quoted(_ value: String) -> String {
        let needs = value.isEmpty || value.unicodeScalars.contains { s in
            s == " " || s == "\"" || s == "=" || s == "\\" || s.value < 0x20 || s.value == 0x7F
        }
        guard needs else { return value }
        var out = "\""
        for s in value.unicodeScalars {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if s.value < 0x20 || s.value == 0x7F { out += String(format: "\\u%04x", s.value) } else { out.unicodeScalars.append(s) }
            }
        }
        return out + "\""
    }

    static func flatten(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return "[" + a.map(flatten).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.sorted { $0.key < $1.key }.map { "\($0.key):\(flatten($0.value))" }.joined(separator: ",") + "}"
        }
    }

    static func jsonValue(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(jsonValue)
        case .dictionary(let d): return d.mapValues(jsonValue)
        }
    }
}
