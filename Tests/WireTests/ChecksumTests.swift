import Testing
import TestSupport
import Wire

/// The Internet checksum (RFC 1071) and its incremental update (RFC 1624), against the
/// word-by-word reference in Fixtures.swift.
@Suite struct ChecksumTests {
    static func sum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        bytes.withUnsafeBytes { InternetChecksum.sum($0, initial: initial) }
    }
    static func checksum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        bytes.withUnsafeBytes { InternetChecksum.checksum($0, initial: initial) }
    }

    @Test func rfc1071Example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        #expect(Self.sum(bytes) == 0xDDF2)
        #expect(Self.checksum(bytes) == 0x220D)
        #expect(referenceSum(bytes) == 0xDDF2)
    }

    @Test func ipv4HeaderExample() {
        // A commonly quoted header: 4500 0073 0000 4000 4011 [b861] c0a8 0001 c0a8 00c7.
        let header = hexBytes("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7")
        #expect(Self.checksum(header) == 0xB861)
        #expect(Self.sum(hexBytes("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")) == 0xFFFF)
    }

    @Test func edgeValues() {
        #expect(Self.sum([]) == 0)
        #expect(Self.sum([], initial: 0x1_0000) == 1)
        #expect(Self.sum([0xAB]) == 0xAB00)
        #expect(Self.sum([UInt8](repeating: 0, count: 64)) == 0)
        #expect(Self.sum([UInt8](repeating: 0xFF, count: 64)) == 0xFFFF)
        #expect(Self.sum([UInt8](repeating: 0xFF, count: 65534)) == 0xFFFF)
        #expect(Self.sum([UInt8](repeating: 0xFF, count: 65535)) == 0xFF00) // odd byte padded: FF00
        #expect(Self.checksum([0xFF, 0xFF]) == 0)
        #expect(Self.sum([0x80, 0x00, 0x80, 0x00]) == 0x0001) // carry wraps around
        #expect(Self.sum([0x00, 0x01], initial: 0xFFFF_FFFF) == referenceSum([0x00, 0x01], initial: 0xFFFF_FFFF))
    }

    /// Every length 0...200 at every start alignment 0..<8, random bytes and initial values.
    @Test func matchesReferenceOnRandomBuffers() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x1071)
        print("ChecksumTests.matchesReferenceOnRandomBuffers seed \(rng.seed)")
        for length in 0...200 {
            for shift in 0..<8 {
                let buffer = rng.bytes(length + shift)
                let initial: UInt32 = switch length % 3 {
                case 0: 0
                case 1: UInt32.random(in: 0...0x3_FFFF, using: &rng)
                default: rng.next()
                }
                let got = buffer.withUnsafeBytes { raw in
                    InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: raw[shift...]), initial: initial)
                }
                let want = referenceSum(buffer[shift...], initial: initial)
                #expect(got == want, "length \(length) shift \(shift) initial \(initial) seed \(rng.seed)")
            }
        }
        // Longer than the vector loop's fold interval (1 MiB), all ones: no lane may overflow.
        let ones = [UInt8](repeating: 0xFF, count: 2_100_001)
        #expect(Self.sum(ones) == referenceSum(ones))
        // A few long ones (a jumbo TCP segment's worth).
        for length in [1499, 1500, 9000, 65535] {
            let buffer = rng.bytes(length)
            #expect(Self.sum(buffer) == referenceSum(buffer), "length \(length) seed \(rng.seed)")
        }
    }

    /// A buffer whose first word is never zero (like an IP or TCP header), so a checksum of it
    /// is never the ambiguous +0/-0 of an all-zero buffer.
    static func headerLike(_ rng: inout SeededGenerator, words: Int) -> [UInt8] {
        var b = rng.bytes(2 * words)
        b[0] = 0x45
        return b
    }

    @Test func incremental16MatchesFullRecompute() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x1624)
        print("ChecksumTests.incremental16MatchesFullRecompute seed \(rng.seed)")
        for _ in 0..<3000 {
            var b = Self.headerLike(&rng, words: Int.random(in: 2...40, using: &rng))
            var c = Self.checksum(b)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = 2 * Int.random(in: 1..<(b.count / 2), using: &rng)
                let old = UInt16(b[at]) << 8 | UInt16(b[at + 1])
                // Edge values appear often: 0, 0xFFFF, unchanged.
                let new: UInt16 = switch Int.random(in: 0..<5, using: &rng) {
                case 0: 0
                case 1: 0xFFFF
                case 2: old
                default: UInt16.random(in: 0...0xFFFF, using: &rng)
                }
                b[at] = UInt8(new >> 8); b[at + 1] = UInt8(new & 0xFF)
                c = InternetChecksum.update(c, old: old, new: new)
                #expect(c == Self.checksum(b), "seed \(rng.seed)")
            }
        }
    }

    @Test func incremental32MatchesFullRecompute() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x1624_0032)
        print("ChecksumTests.incremental32MatchesFullRecompute seed \(rng.seed)")
        for _ in 0..<3000 {
            var b = Self.headerLike(&rng, words: Int.random(in: 3...40, using: &rng))
            var c = Self.checksum(b)
            let at = 2 * Int.random(in: 1..<(b.count / 2 - 1), using: &rng)
            let old = UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
            let new: UInt32 = switch Int.random(in: 0..<5, using: &rng) {
            case 0: 0
            case 1: 0xFFFF_FFFF
            case 2: old
            default: UInt32.random(in: 0...UInt32.max, using: &rng)
            }
            for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: new >> (24 - 8 * i)) }
            c = InternetChecksum.update(c, old: old, new: new)
            #expect(c == Self.checksum(b), "seed \(rng.seed)")
        }
    }

    @Test func addIsOnesComplement() {
        #expect(InternetChecksum.add(0xFFFF, 1) == 1)
        #expect(InternetChecksum.add(0, 0) == 0)
        #expect(InternetChecksum.add(0xFFFF_FFFF, 0xFFFF_FFFF) == referenceSum([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
        let a: [UInt8] = [0x12, 0x34, 0xF0, 0x0F], b: [UInt8] = [0xAB, 0xCD]
        #expect(InternetChecksum.add(UInt32(referenceSum(a)), UInt32(referenceSum(b))) == UInt32(referenceSum(a + b)))
    }
}
