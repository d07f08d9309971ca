import Media
import Testing

/// GOP boundary rules on built packets (RFC 6184 §5.6-§5.8, RFC 6416 §5.1): one report per
/// access unit, before its picture, never for reordered or duplicated packets.
@Suite struct GOPBoundaryDetectorTests {
    static func rtp(seq: UInt16, ts: UInt32, marker: Bool = false, _ payload: [UInt8]) -> [UInt8] {
        [0x80, marker ? 0xE0 : 0x60, UInt8(seq >> 8), UInt8(seq & 0xFF),
         UInt8(ts >> 24), UInt8(ts >> 16 & 0xFF), UInt8(ts >> 8 & 0xFF), UInt8(ts & 0xFF), 0, 0, 0, 1] + payload
    }

    static let sps: [UInt8] = [0x67, 0x42, 0xC0, 0x15], pps: [UInt8] = [0x68, 0xCE, 0x3C, 0x80]
    static let idr: [UInt8] = [0x65, 0x88, 0x84], pSlice: [UInt8] = [0x41, 0x9A, 0x02]

    static func stapA(_ units: [[UInt8]]) -> [UInt8] {
        [0x18] + units.flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xFF)] + $0 }
    }

    static func fuA(type: UInt8, start: Bool, end: Bool = false) -> [UInt8] {
        [0x7C, (start ? 0x80 : 0) | (end ? 0x40 : 0) | type, 0xAB, 0xCD]
    }

    @Test func h264RulesPerPacketization() {
        let d = Driven(GOPBoundaryDetector(codec: .h264))
        // SPS, PPS, IDR in three packets of one timestamp: the SPS packet only.
        #expect(d.observe(packet: Self.rtp(seq: 1, ts: 100, Self.sps)))
        #expect(!d.observe(packet: Self.rtp(seq: 2, ts: 100, Self.pps)))
        #expect(!d.observe(packet: Self.rtp(seq: 3, ts: 100, marker: true, Self.idr)))
        // A P slice: nothing.
        #expect(!d.observe(packet: Self.rtp(seq: 4, ts: 200, marker: true, Self.pSlice)))
        // An IDR in FU-A: its start fragment only.
        #expect(d.observe(packet: Self.rtp(seq: 5, ts: 300, Self.fuA(type: 5, start: true))))
        #expect(!d.observe(packet: Self.rtp(seq: 6, ts: 300, marker: true, Self.fuA(type: 5, start: false, end: true))))
        // An FU-A middle fragment of an IDR whose start was lost: not a GOP start.
        #expect(!d.observe(packet: Self.rtp(seq: 8, ts: 400, Self.fuA(type: 5, start: false))))
        // STAP-A with SPS, PPS and the IDR.
        #expect(d.observe(packet: Self.rtp(seq: 9, ts: 500, marker: true, Self.stapA([Self.sps, Self.pps, Self.idr]))))
        // STAP-A with SPS and PPS before a P slice: parameter sets alone do not make a GOP.
        #expect(!d.observe(packet: Self.rtp(seq: 10, ts: 600, marker: true, Self.stapA([Self.sps, Self.pps, Self.pSlice]))))
        // Access unit delimiters: primary_pic_type 0 (I) announces a possible GOP, 2 (I, P, B) does not.
        #expect(d.observe(packet: Self.rtp(seq: 11, ts: 700, [0x09, 0x10])))
        #expect(!d.observe(packet: Self.rtp(seq: 12, ts: 700, marker: true, Self.idr)))
        #expect(!d.observe(packet: Self.rtp(seq: 13, ts: 800, [0x09, 0x50])))
        #expect(!d.observe(packet: Self.rtp(seq: 14, ts: 800, Self.sps)))
        #expect(d.gopStarts == 4 && d.unconfirmedStarts == 0 && d.accessUnits == 8)
    }

    @Test func parameterSetsBeforeAPSliceCountAsUnconfirmed() {
        let d = Driven(GOPBoundaryDetector(codec: .h264))
        #expect(d.observe(packet: Self.rtp(seq: 1, ts: 100, Self.sps)))
        #expect(!d.observe(packet: Self.rtp(seq: 2, ts: 100, marker: true, Self.pSlice)))
        #expect(d.unconfirmedStarts == 1)
    }

    @Test func reorderedAndDuplicatedPacketsAreNeverGOPStarts() {
        let d = Driven(GOPBoundaryDetector(codec: .h264))
        #expect(!d.observe(packet: Self.rtp(seq: 65_535, ts: 100, marker: true, Self.pSlice)))
        #expect(d.observe(packet: Self.rtp(seq: 0, ts: 200, Self.sps)))   // wraps: still after
        #expect(!d.observe(packet: Self.rtp(seq: 0, ts: 200, Self.sps)))  // duplicate
        #expect(!d.observe(packet: Self.rtp(seq: 65_534, ts: 50, Self.idr)))  // late
        #expect(!d.observe(packet: Self.rtp(seq: 1, ts: 200, marker: true, Self.idr)))
        #expect(d.gopStarts == 1)
    }

    @Test func aMarkerEndsAnAccessUnitEvenWithTheSameTimestamp() {
        let d = Driven(GOPBoundaryDetector(codec: .h264))
        #expect(d.observe(packet: Self.rtp(seq: 1, ts: 100, marker: true, Self.idr)))
        #expect(d.observe(packet: Self.rtp(seq: 2, ts: 100, marker: true, Self.idr)))
    }

    @Test func mpeg4Rules() {
        let vos: [UInt8] = [0, 0, 1, 0xB0, 0x01], vol: [UInt8] = [0, 0, 1, 0x20, 0x00, 0xC4]
        let iVOP: [UInt8] = [0, 0, 1, 0xB6, 0x10, 0x00], pVOP: [UInt8] = [0, 0, 1, 0xB6, 0x50, 0x00]
        let gov: [UInt8] = [0, 0, 1, 0xB3, 0x00, 0x10]
        let d = Driven(GOPBoundaryDetector(codec: .mpeg4Visual))
        #expect(d.observe(packet: Self.rtp(seq: 1, ts: 100, vos + vol + iVOP)))
        #expect(!d.observe(packet: Self.rtp(seq: 2, ts: 100, marker: true, [0x12, 0x34])))   // fragment
        #expect(!d.observe(packet: Self.rtp(seq: 3, ts: 200, marker: true, pVOP)))
        #expect(d.observe(packet: Self.rtp(seq: 4, ts: 300, marker: true, iVOP)))
        #expect(d.observe(packet: Self.rtp(seq: 5, ts: 400, gov + iVOP)))
        #expect(!d.observe(packet: Self.rtp(seq: 6, ts: 500, marker: true, gov + pVOP)))  // headers before a P-VOP
        // Configuration alone in the first packet, the I-VOP in the next: the first packet.
        #expect(d.observe(packet: Self.rtp(seq: 7, ts: 600, vos + vol)))
        #expect(!d.observe(packet: Self.rtp(seq: 8, ts: 600, marker: true, iVOP)))
        #expect(!d.observe(packet: Self.rtp(seq: 9, ts: 700, marker: true, [0, 0, 1, 0xB6])))  // VOP type cut off
        #expect(d.gopStarts == 4 && d.unconfirmedStarts == 0)
    }

    @Test func invalidRTPIsNeverAGOPStart() {
        let d = Driven(GOPBoundaryDetector(codec: .h264))
        var packet = Self.rtp(seq: 1, ts: 1, Self.idr)
        packet[0] = 0x40
        #expect(!d.observe(packet: packet))
        #expect(!d.observe(packet: Array(Self.rtp(seq: 1, ts: 1, []).prefix(11))))
        #expect(!d.observe(packet: Self.rtp(seq: 2, ts: 1, [])))
        #expect(!d.observe(packet: Self.rtp(seq: 3, ts: 2, [0x18, 0x00, 0x09, 0x67])))  // STAP-A size lies
        #expect(d.gopStarts == 0)
    }
}
