/// An IPv6 address (RFC 8200 §3), its 128 bits as two host-order halves (`high` holds the
/// first 8 bytes on the wire).
public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var high: UInt64
    public var low: UInt64
    @inlinable public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    /// The 16 bytes at `offset` in `bytes` (the caller checked `offset + 16 <= bytes.count`).
    @inlinable init(_ bytes: UnsafeMutableRawBufferPointer, at offset: Int) {
        high = bytes.u64(offset)
        low = bytes.u64(offset + 8)
    }

    /// The same from immutable bytes (peeks).
    @inlinable init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        high = bytes.u64(offset)
        low = bytes.u64(offset + 8)
    }

    /// The eight 16-bit groups, first first (RFC 4291 §2.2).
    @inlinable public var groups: [UInt16] {
        (0..<8).map { i in UInt16(truncatingIfNeeded: (i < 4 ? high : low) >> (48 - 16 * UInt64(i % 4))) }
    }

    /// The one's-complement sum of the eight 16-bit groups, unfolded (at most 8 x 0xFFFF): what
    /// the address adds to a pseudo-header sum (RFC 8200 §8.1).
    @inlinable public var wordSum: UInt32 {
        func words(_ v: UInt64) -> UInt32 {
            UInt32(v >> 48) + UInt32(v >> 32 & 0xFFFF) + UInt32(v >> 16 & 0xFFFF) + UInt32(v & 0xFFFF)
        }
        return words(high) + words(low)
    }

    /// Parses the text forms of RFC 4291 §2.2: eight groups of 1 to 4 hex digits, at most one
    /// "::" standing for one or more zero groups, and an optional dotted-quad tail for the last
    /// 32 bits ("::ffff:10.1.0.2"). Nil for anything else (zone ids "%eth0", brackets, prefixes).
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8.count <= 45 else { return nil }
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        var i = 0
        if utf8[0] == UInt8(ascii: ":") {
            guard utf8[1] == UInt8(ascii: ":") else { return nil }
            sawGap = true
            i = 2
        }
        while i < utf8.count {
            // One group (or a dotted-quad tail), then ":" or "::" or the end.
            var j = i
            while j < utf8.count, utf8[j] != UInt8(ascii: ":") { j += 1 }
            let part = utf8[i..<j]
            var groups: [UInt16] = []
            if part.contains(UInt8(ascii: ".")) {
                guard j == utf8.count, let v4 = IPv4Address(String(decoding: part, as: UTF8.self)) else { return nil }
                groups = [UInt16(v4.value >> 16), UInt16(truncatingIfNeeded: v4.value)]
            } else {
                guard (1...4).contains(part.count) else { return nil }
                var v: UInt16 = 0
                for c in part {
                    guard let d = Self.hexDigit(c) else { return nil }
                    v = v << 4 | UInt16(d)
                }
                groups = [v]
            }
            if sawGap { tail += groups } else { head += groups }
            if j == utf8.count { break }
            // At a ":": a "::" is the gap (only one); a single ":" must be followed by a group.
            if j + 1 < utf8.count, utf8[j + 1] == UInt8(ascii: ":") {
                guard !sawGap else { return nil }
                sawGap = true
                i = j + 2
            } else {
                guard j + 1 < utf8.count else { return nil }
                i = j + 1
            }
        }
        let count = head.count + tail.count
        guard sawGap ? count <= 7 : count == 8 else { return nil }
        let all = head + [UInt16](repeating: 0, count: 8 - count) + tail
        var hi: UInt64 = 0, lo: UInt64 = 0
        for k in 0..<4 { hi = hi << 16 | UInt64(all[k]) }
        for k in 4..<8 { lo = lo << 16 | UInt64(all[k]) }
        self.init(high: hi, low: lo)
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The canonical text form (RFC 5952 §4): lowercase hex without leading zeros, the longest
    /// run of two or more zero groups (the first of equal runs) as "::".
    public var description: String {
        let g = groups
        var bestStart = -1, bestLength = 1
        var k = 0
        while k < 8 {
            guard g[k] == 0 else { k += 1; continue }
            var e = k
            while e < 8, g[e] == 0 { e += 1 }
            if e - k > bestLength { bestStart = k; bestLength = e - k }
            k = e
        }
        let hex = { (r: ArraySlice<UInt16>) in r.map { String($0, radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(g[...]) }
        return hex(g[0..<bestStart]) + "::" + hex(g[(bestStart + bestLength)...])
    }

    @inlinable public static func < (a: IPv6Address, b: IPv6Address) -> Bool {
        (a.high, a.low) < (b.high, b.low)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPv6Address(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an IPv6 address: \(text)"))
        }
        self = a
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// An IPv6 transport endpoint: address and port, written "[ADDR]:PORT" (RFC 5952 §6).
public struct IPv6Endpoint: Hashable, Sendable, CustomStringConvertible, Codable {
    public var address: IPv6Address
    public var port: UInt16
    @inlinable public init(_ address: IPv6Address, _ port: UInt16) { self.address = address; self.port = port }
    /// Parses "[ADDR]:PORT"; the port is 1 to 5 ASCII digits.
    public init?(_ text: some StringProtocol) {
        guard text.first == "[", let close = text.firstIndex(of: "]") else { return nil }
        let afterClose = text.index(after: close)
        guard afterClose < text.endIndex, text[afterClose] == ":" else { return nil }
        let portText = text[text.index(after: afterClose)...]
        guard let a = IPv6Address(text[text.index(after: text.startIndex)..<close]),
              !portText.isEmpty, portText.count <= 5,
              portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let p = UInt16(portText) else { return nil }
        self.init(a, p)
    }
    public var description: String { "[\(address)]:\(port)" }
}
