import Testing
import TestSupport
import Wire

/// Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4) and sequence-space offsets.
@Suite struct SeqNumberTests {
    let top = SeqNumber(0xFFFF_FFF0)
    let bottom = SeqNumber(0x10)

    @Test func comparesAcrossTheWrap() {
        #expect(top.lessThan(bottom))
        #expect(top.lessThanOrEqual(bottom))
        #expect(bottom.greaterThan(top))
        #expect(bottom.greaterThanOrEqual(top))
        #expect(!bottom.lessThan(top))
        #expect(!top.greaterThan(bottom))
        #expect(top.lessThanOrEqual(top) && top.greaterThanOrEqual(top))
        #expect(!top.lessThan(top) && !top.greaterThan(top))
        #expect(SeqNumber(UInt32.max).lessThan(SeqNumber(0)))
        #expect(SeqNumber.max(top, bottom) == bottom)
        #expect(SeqNumber.min(top, bottom) == top)
        #expect(SeqNumber.max(bottom, top) == bottom)
        #expect(SeqNumber.min(bottom, top) == top)
    }

    @Test func distancesAcrossTheWrap() {
        #expect(bottom - top == 32)
        #expect(top - bottom == -32)
        #expect(top.distance(to: bottom) == 32)
        #expect(bottom.distance(to: top) == 0xFFFF_FFE0)
        #expect(top + 32 == bottom)
        #expect(bottom - 32 == top)
        var s = top
        s += 0x20
        #expect(s == bottom)
        // The largest distances still ordered.
        #expect(SeqNumber(0) - SeqNumber(0x7FFF_FFFF) == -0x7FFF_FFFF)
        #expect(SeqNumber(0x7FFF_FFFF).greaterThan(SeqNumber(0)))
        // Exactly 2^31 apart the order is undefined (RFC 9293 §3.4); it must not trap.
        #expect(SeqNumber(0x8000_0000) - SeqNumber(0) == Int32.min)
        #expect(SeqNumber(0) - SeqNumber(0x8000_0000) == Int32.min)
    }

    @Test func inWindowAtTheBoundary() {
        let first = SeqNumber(0xFFFF_FFFE)
        #expect(!SeqNumber(0xFFFF_FFFD).inWindow(first, size: 4))
        #expect(SeqNumber(0xFFFF_FFFE).inWindow(first, size: 4))
        #expect(SeqNumber(0xFFFF_FFFF).inWindow(first, size: 4))
        #expect(SeqNumber(0).inWindow(first, size: 4))
        #expect(SeqNumber(1).inWindow(first, size: 4))
        #expect(!SeqNumber(2).inWindow(first, size: 4))
        #expect(!first.inWindow(first, size: 0))
        #expect(SeqNumber(0x1234).inWindow(first, size: UInt32.max))
        #expect(!(first - 1).inWindow(first, size: UInt32.max))
    }

    @Test func offsetsMapAcrossTheWrap() {
        let original = SeqNumber(0xFFFF_FF00), spliced = SeqNumber(0x100)
        let offset = SequenceOffset(from: original, to: spliced)
        #expect(offset.delta == 0x200)
        #expect(!offset.isZero)
        #expect(offset.apply(original) == spliced)
        #expect(offset.reverse(spliced) == original)
        #expect(offset.inverse.apply(spliced) == original)
        #expect(offset.inverse.inverse == offset)
        #expect(SequenceOffset().isZero)
        #expect(SequenceOffset(from: spliced, to: original) == offset.inverse)
        #expect(SequenceOffset().inverse.isZero)
        #expect(offset.apply(original + 0x1000) == spliced + 0x1000)
    }

    @Test func offsetRoundTripsRandomValues() {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 9293)
        print("SeqNumberTests.offsetRoundTripsRandomValues seed \(rng.seed)")
        for _ in 0..<2000 {
            let a = SeqNumber(UInt32.random(in: 0...UInt32.max, using: &rng))
            let b = SeqNumber(UInt32.random(in: 0...UInt32.max, using: &rng))
            let o = SequenceOffset(from: a, to: b)
            #expect(o.apply(a) == b)
            #expect(o.reverse(o.apply(b)) == b)
            #expect(o.inverse.apply(o.apply(a)) == a)
            // Offsets keep order and distance (within 2^31).
            let n = UInt32.random(in: 1..<0x8000_0000, using: &rng)
            #expect(o.apply(a).lessThan(o.apply(a + n)))
            #expect(o.apply(a).distance(to: o.apply(a + n)) == n)
            #expect((a + n) - a == Int32(n))
        }
    }

    @Test func description() {
        #expect(SeqNumber(42).description == "42")
        #expect(SequenceOffset(delta: 7).description == "+7")
    }
}
