/// Bytes from hex text; whitespace, newlines, ':' and '_' are ignored so fixtures can be laid
/// out by field ("4500 003c  d4e9 4000"). Traps on anything else or an odd digit count.
public func hexBytes(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var high: UInt8?
    for c in text.unicodeScalars {
        if c == " " || c == "\n" || c == "\t" || c == ":" || c == "_" { continue }
        guard let nibble = UInt8(String(c), radix: 16) else { preconditionFailure("not hex: \(c) in \(text)") }
        if let h = high { out.append(h << 4 | nibble); high = nil } else { high = nibble }
    }
    precondition(high == nil, "odd number of hex digits in \(text)")
    return out
}

/// Lower-case hex with no separators (the inverse of `hexBytes`).
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xF)]) }
    return String(decoding: out, as: UTF8.self)
}
