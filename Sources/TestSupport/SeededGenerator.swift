#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reproducible random source (SplitMix64) for property tests: print the seed, and rerun a
/// failure with it.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) { self.seed = seed; self.state = seed }

    /// The seed from the environment variable `name` (decimal or 0x-hex) when set, else
    /// `defaultSeed`; so a failing run reproduces with `TSMP_TEST_SEED=... swift test`.
    public static func fromEnvironment(_ name: String = "TSMP_TEST_SEED", defaultSeed: UInt64) -> SeededGenerator {
        SeededGenerator(seed: environmentInteger(name) ?? defaultSeed)
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = next()
            for _ in 0..<8 where i < count { out[i] = UInt8(truncatingIfNeeded: word); word >>= 8; i += 1 }
        }
        return out
    }
}

/// An unsigned integer from the environment (decimal or 0x-hex), or nil.
public func environmentInteger(_ name: String) -> UInt64? {
    guard let raw = getenvString(name) else { return nil }
    if raw.hasPrefix("0x") { return UInt64(raw.dropFirst(2), radix: 16) }
    return UInt64(raw)
}

private func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}
