/// The header fields of an RTSP message in their order (RFC 2326 §4.2, §12), looked up by name
/// without regard to case (field names are case-insensitive, as in HTTP/1.1 RFC 2616 §4.2).
/// Each field keeps the bytes it was received as until it is changed.
public struct RTSPHeaderFields: Sendable, Equatable, Sequence {
    public struct Field: Sendable, Equatable {
        public let name: String
        public let value: String
        /// The received line(s), continuation lines and terminators included; nil once changed.
        let raw: [UInt8]?

        init(name: String, value: String, raw: [UInt8]?) { self.name = name; self.value = value; self.raw = raw }
    }

    private(set) var fields: [Field] = []

    public init() {}
    public init(_ pairs: [(String, String)]) {
        for (name, value) in pairs { fields.append(Field(name: name, value: value, raw: nil)) }
    }

    init(parsed: [Field]) { fields = parsed }

    public var count: Int { fields.count }
    public func makeIterator() -> IndexingIterator<[Field]> { fields.makeIterator() }

    /// The first field named `name` (any case); setting replaces it in place (keeping its
    /// position and its name's spelling), appends it when absent, removes every one when nil.
    public subscript(name: String) -> String? {
        get { fields.first { RTSPSyntax.sameName($0.name, name) }?.value }
        set {
            guard let newValue else { remove(name); return }
            let clean = RTSPSyntax.singleLine(newValue)
            if let i = fields.firstIndex(where: { RTSPSyntax.sameName($0.name, name) }) {
                if fields[i].value == clean && fields[i].raw != nil { return }
                fields[i] = Field(name: fields[i].name, value: clean, raw: nil)
            } else {
                fields.append(Field(name: name, value: clean, raw: nil))
            }
        }
    }

    /// Every value of fields named `name`, in order (a field may appear more than once).
    public func values(_ name: String) -> [String] {
        fields.filter { RTSPSyntax.sameName($0.name, name) }.map(\.value)
    }

    public mutating func remove(_ name: String) {
        fields.removeAll { RTSPSyntax.sameName($0.name, name) }
    }

    func append(to out: inout [UInt8]) {
        for field in fields {
            if let raw = field.raw { out += raw } else { out += Array("\(field.name): \(field.value)\r\n".utf8) }
        }
    }
}
