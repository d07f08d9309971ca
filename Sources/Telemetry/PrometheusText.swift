/// Writes the Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` per
/// family, then its samples. For values a service keeps itself (the engine's histograms, the
/// namespace's and the agent's counters) without a metrics registry. Counters get their
/// `_total` suffix here, so none can miss it (promtool's lint asks for it).
public struct PrometheusText: Sendable {
    public typealias Labels = [(String, String)]
    public private(set) var text = ""

    public init() {}

    /// A counter family `NAME_total` with one sample per label set.
    public mutating func counter(_ name: String, help: String, _ samples: [(labels: Labels, value: UInt64)]) {
        let family = name.hasSuffix("_total") ? name : name + "_total"
        head(family, "counter", help)
        for s in samples { sample(family, s.labels, String(s.value)) }
    }

    public mutating func gauge(_ name: String, help: String, _ samples: [(labels: Labels, value: Double)]) {
        head(name, "gauge", help)
        for s in samples { sample(name, s.labels, Self.number(s.value)) }
    }

    /// A histogram: cumulative `le` buckets ending with +Inf, then `_sum` and `_count`.
    public mutating func histogram(_ name: String, help: String, buckets: [(le: Double, count: UInt64)], sum: Double) {
        head(name, "histogram", help)
        var count: UInt64 = 0
        for b in buckets {
            sample(name + "_bucket", [("le", Self.number(b.le))], String(b.count))
            count = b.count
        }
        if buckets.last?.le != .infinity { sample(name + "_bucket", [("le", "+Inf")], String(count)) }
        sample(name + "_sum", [], Self.number(sum))
        sample(name + "_count", [], String(count))
    }

    private mutating func head(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type)\n"
    }

    private mutating func sample(_ name: String, _ labels: Labels, _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " \(value)\n"
    }

    /// Numbers as Prometheus parses them: integers without a fraction, +Inf/-Inf/NaN by name.
    public static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// HELP text: backslash and line feed escaped.
    static func escapeHelp(_ s: String) -> String {
        s.replacingAll("\\", "\\\\").replacingAll("\n", "\\n")
    }

    /// Label values: backslash, double quote and line feed escaped.
    static func escapeLabel(_ s: String) -> String {
        s.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"").replacingAll("\n", "\\n")
    }
}

extension String {
    /// `replacingOccurrences` without Foundation (Telemetry depends on Logging only).
    fileprivate func replacingAll(_ target: Character, _ replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
