/// The SHA-256 of a device's public key (its DER SubjectPublicKeyInfo, RFC 5280 §4.1.2.7), as
/// the namespace remembers it when it certifies the device. A registration or introduction
/// repeated with the same key (a client that never got the first answer, e.g. after a crash)
/// is told from a takeover by it: same key, same answer; another key, a conflict.
public struct KeyFingerprint: Hashable, Sendable, CustomStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    /// From the 32 bytes of a SHA-256 digest.
    public init(sha256Digest bytes: some Collection<UInt8>) throws(NamespaceError) {
        guard bytes.count == 32 else { throw .invalid("key fingerprint: \(bytes.count) bytes, expected a 32-byte SHA-256 digest") }
        let digits = Array("0123456789abcdef")
        hex = String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// From its stored text.
    public init(hex text: String) throws(NamespaceError) {
        let valid = text.utf8.count == 64 && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
            || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
        guard valid else { throw .invalid("key fingerprint \"\(text)\": expected 64 lowercase hex digits") }
        hex = text
    }

    public var description: String { "sha256:\(hex.prefix(16))…" }
}
