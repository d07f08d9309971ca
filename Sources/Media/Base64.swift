/// Base64 decoding (RFC 4648 §4) for SDP values such as H.264 sprop-parameter-sets (RFC 6184
/// §8.1), without Foundation. Padding is optional; any other character makes it nil.
enum Base64 {
    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var sawPadding = false
        for c in text.utf8 {
            if c == 0x3D { sawPadding = true; continue }
            guard !sawPadding, let v = value(c) else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
            accumulator &= (1 << UInt32(bits)) - 1
        }
        // Leftover bits of a complete encoding are fewer than 6 (RFC 4648 §3.5); one lone
        // sextet cannot encode a byte.
        return bits >= 6 ? nil : out
    }

    private static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x41...0x5A: c - 0x41
        case 0x61...0x7A: c - 0x61 + 26
        case 0x30...0x39: c - 0x30 + 52
        case 0x2B, 0x2D: 62 // "+" (and "-" of the URL alphabet)
        case 0x2F, 0x5F: 63 // "/" (and "_")
        default: nil
        }
    }
}
