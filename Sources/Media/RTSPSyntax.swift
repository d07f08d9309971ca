/// Small lexical helpers shared by the RTSP and SDP parsers (RFC 2326 §15, RFC 2616 §2.2):
/// ASCII-only comparisons and number parsing that never trap on any input.
enum RTSPSyntax {
    /// ASCII case-insensitive equality of two field names (RFC 2616 §4.2).
    static func sameName(_ a: String, _ b: String) -> Bool {
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        return zip(x, y).allSatisfy { lower($0) == lower($1) }
    }

    static func lower(_ c: UInt8) -> UInt8 { (0x41...0x5A).contains(c) ? c | 0x20 : c }

    /// Leading and trailing spaces and tabs removed.
    static func trim(_ s: Substring) -> Substring {
        var s = s
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }

    static func trim(_ s: String) -> String { String(trim(Substring(s))) }

    /// A value safe to write on one header line: CR, LF and NUL become spaces, so a rewritten
    /// value can never inject another header field.
    static func singleLine(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else { return s }
        return String(decoding: s.utf8.map { ($0 == 0x0D || $0 == 0x0A || $0 == 0) ? 0x20 : $0 }, as: UTF8.self)
    }

    /// A non-negative decimal of at most `maxDigits` digits (no sign, no spaces), else nil.
    static func decimal<S: StringProtocol>(_ s: S, maxDigits: Int = 18) -> Int? {
        let u = s.utf8
        guard !u.isEmpty, u.count <= maxDigits else { return nil }
        var v = 0
        for c in u {
            guard (0x30...0x39).contains(c) else { return nil }
            v = v * 10 + Int(c - 0x30)
        }
        return v
    }

    /// A hexadecimal number of at most `maxDigits` digits, else nil.
    static func hex<S: StringProtocol>(_ s: S, maxDigits: Int = 16) -> UInt64? {
        let u = s.utf8
        guard !u.isEmpty, u.count <= maxDigits else { return nil }
        var v: UInt64 = 0
        for c in u {
            guard let d = hexDigit(c) else { return nil }
            v = v << 4 | UInt64(d)
        }
        return v
    }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// A token (RFC 2616 §2.2): visible ASCII except separators; used for methods.
    static func isToken(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            c > 0x20 && c < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains(c)
        }
    }
}
