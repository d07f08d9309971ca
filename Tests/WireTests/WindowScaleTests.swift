import Testing
import Wire

/// Window translation between two scales (RFC 7323 §2.3-2.4): the one place the engine's
/// windows are shifted, rounded and clamped.
@Suite struct WindowScaleTests {
    @Test func sameScaleIsIdentity() {
        for shift: UInt8 in [0, 7, 14] {
            for field: UInt16 in [0, 1, 501, 65_535] {
                #expect(WindowScale(from: shift, to: shift).translate(field) == field)
            }
        }
    }

    @Test func coarserScaleRoundsDownNeverOffersMore() {
        // 1000 units of 2^2 = 4000 bytes = 31.25 units of 2^7: 31 (3968 bytes), never 32.
        let w = WindowScale(from: 2, to: 7)
        #expect(w.translate(1000) == 31)
        for field: UInt16 in [0, 32, 33, 1000, 65_535] {
            let offered = WindowScale.bytes(field, shift: 2)
            let written = WindowScale.bytes(w.translate(field), shift: 7)
            #expect(written <= offered && offered - written < 1 << 7)
        }
    }

    @Test("an open window less than one unit of the coarser scale is written as one unit, never as closed")
    func tinyOpenWindowStaysOpen() {
        let w = WindowScale(from: 0, to: 7)
        #expect(w.translate(0) == 0)
        #expect(w.translate(1) == 1 && w.translate(100) == 1 && w.translate(127) == 1)
        #expect(w.translate(128) == 1 && w.translate(255) == 1 && w.translate(256) == 2)
        // Over-offered by less than one unit.
        for field: UInt16 in [1, 31] {
            let offered = WindowScale.bytes(field, shift: 2)
            let written = WindowScale.bytes(WindowScale(from: 2, to: 7).translate(field), shift: 7)
            #expect(written > offered && written - offered < 1 << 7)
        }
    }

    @Test func finerScaleClampsTo16Bits() {
        // 1000 units of 2^7 = 128,000 bytes: more than an unscaled field holds.
        #expect(WindowScale(from: 7, to: 0).translate(1000) == 65_535)
        #expect(WindowScale(from: 7, to: 2).translate(1000) == 32_000)
        #expect(WindowScale(from: 14, to: 0).translate(65_535) == 65_535)
    }

    @Test func fieldOfBytes() {
        #expect(WindowScale.field(bytes: 0, shift: 3) == 0)
        #expect(WindowScale.field(bytes: 7, shift: 3) == 1)
        #expect(WindowScale.field(bytes: -5, shift: 3) == 0)
        #expect(WindowScale.field(bytes: 8, shift: 3) == 1)
        #expect(WindowScale.field(bytes: Int(UInt32.max), shift: 0) == 65_535)
        #expect(WindowScale.bytes(65_535, shift: 14) == 65_535 << 14)
    }
}
