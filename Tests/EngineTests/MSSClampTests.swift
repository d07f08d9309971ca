@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// `--clamp-mss` (RFC 9293 §3.7.1, RFC 6691): forwarded SYNs announce no more than the known
/// links carry; checksums stay right; off, nothing changes.
@Suite("MSS clamping")
struct MSSClampTests {
    let c = Conversation()

    func config(_ clamp: MSSClamp?) -> EngineConfig {
        var config = Lab.transparent()
        config.mssClamp = clamp
        return config
    }

    @Test("the clamp of links of MTU 1400 (uplink) and 1280 (devices)")
    func clampFromMTUs() {
        let clamp = MSSClamp(uplinkMTU: 1400, deviceMTUs: [1500, 1280])
        #expect(clamp.towardServer == 1360 && clamp.towardDevice == 1240)
        #expect(MSSClamp(uplinkMTU: nil, deviceMTUs: []) == MSSClamp())
    }

    @Test("SYN and SYN-ACK are clamped in place, other options kept, checksums right")
    func synsAreClamped() throws {
        let h = EngineHarness(config(MSSClamp(towardServer: 1360, towardDevice: 1240)))
        let options: [TCPOption] = [.maximumSegmentSize(1460), .sackPermitted, .timestamp(value: 9, echoReply: 0), .noOperation, .windowScale(7)]
        let syn = h.send(c.device(.syn, seq: 1000, options: options))
        let s = try DecodedTCP4(syn.bytes)
        #expect(syn.verdict == .forward && s.maximumSegmentSize == 1360 && s.checksumsValid)
        #expect(s.sackPermitted && s.windowScale == 7 && s.timestamp! == (9, 0))
        let synAck = h.send(c.server([.syn, .ack], seq: 5000, ack: 1001, options: [.maximumSegmentSize(1460)]))
        let a = try DecodedTCP4(synAck.bytes)
        #expect(synAck.verdict == .forward && a.maximumSegmentSize == 1240 && a.checksumsValid)
        #expect(h.engine.counters.synsClamped == 2)
    }

    @Test("a smaller MSS, no MSS option, or no clamp: the SYN is forwarded as it came (but for NAT)")
    func unchangedWhenNotLarger() throws {
        let h = EngineHarness(config(MSSClamp(towardServer: 1360, towardDevice: 1240)))
        let small = c.device(.syn, seq: 1000, options: [.maximumSegmentSize(1200)])
        #expect(h.send(small).bytes == c.towardServer(small))
        let h2 = EngineHarness(config(nil))
        let big = c.device(.syn, seq: 1000, options: [.maximumSegmentSize(1460)])
        #expect(h2.send(big).bytes == c.towardServer(big))
        #expect(h.engine.counters.synsClamped == 0 && h2.engine.counters.synsClamped == 0)
    }
}
