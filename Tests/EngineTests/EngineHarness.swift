@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The lab of DESIGN §8 as the engine sees it: a device behind the gateway, a server on the
/// uplink, the NAT address the server sees, and a service address.
enum Lab {
    static let device = "10.1.0.2:40000"
    static let server = "10.2.0.2:8080"
    static let nat = address("10.2.0.1")
    /// The first NAT port handed out (the default range starts there).
    static let firstNAT = "10.2.0.1:61000"
    static let vip = "10.9.9.9:80"

    /// Transparent gateway intercepting tcp/8080.
    static func transparent(natPorts: PortRange = EngineConfig.defaultNATPorts,
                            limits: EngineLimits = EngineLimits()) -> EngineConfig {
        EngineConfig(nat: nat, natPorts: natPorts, intercepts: [PortRange(8080, 8080)], limits: limits)
    }

    /// Service address 10.9.9.9:80 = 10.2.0.2:8080.
    static func service(limits: EngineLimits = EngineLimits()) -> EngineConfig {
        EngineConfig(nat: nat, services: [ServiceMapping(vip: endpoint(vip), target: endpoint(server))], limits: limits)
    }
}

/// What became of one packet handed to the engine.
struct Outcome {
    var verdict: SpliceEngine.Verdict
    /// The packet after `process` (rewritten in place when forwarded).
    var bytes: [UInt8]
    /// Packets the engine generated while processing it.
    var generated: [[UInt8]]

    var decoded: DecodedTCP4 { get throws { try DecodedTCP4(bytes) } }
}

/// One engine and its injected clock: a test scripts packets through `send` and moves time
/// with `advance`; nothing sleeps and nothing reads a real clock (smoltcp's sans-IO tests).
final class EngineHarness {
    let engine: SpliceEngine
    private(set) var now: Instant
    private let generated = PacketBatch(capacity: 8, maxPacket: 2048)

    init(_ config: EngineConfig, start: Instant = Instant(nanoseconds: 1_000_000_000)) {
        engine = SpliceEngine(config: config)
        now = start
    }

    /// Processes a copy of `packet` at the current time.
    @discardableResult
    func send(_ packet: [UInt8]) -> Outcome {
        var bytes = packet
        generated.removeAll()
        let verdict = bytes.withUnsafeMutableBytes { engine.process($0, now: now, generated: generated) }
        return Outcome(verdict: verdict, bytes: bytes, generated: (0..<generated.count).map { generated.bytes($0) })
    }

    func advance(seconds: UInt64 = 0, nanoseconds: UInt64 = 0) {
        now = Instant(nanoseconds: now.nanoseconds + seconds * 1_000_000_000 + nanoseconds)
    }

    /// One incremental expiry tick at the current time.
    func expire() { engine.expire(now: now) }

    /// The managed flow whose device endpoint is `device`.
    func flow(device: String = Lab.device) -> FlowSummary? {
        engine.flowSummaries(now: now).first { $0.device == endpoint(device) }
    }

    func state(device: String = Lab.device) -> FlowState? { flow(device: device)?.state }

    /// The internal flow (sequence offsets, in-flight copy), through `@testable`.
    func internalFlow(natPort: UInt16 = 61_000) -> Flow? {
        guard let slot = engine.table.slot(natPort: natPort) else { return nil }
        return engine.table[slot: slot]
    }

    /// Changes the internal flow (test hook for sequence offsets).
    func modifyFlow(natPort: UInt16 = 61_000, _ body: (inout Flow) -> Void) {
        guard let slot = engine.table.slot(natPort: natPort) else { return }
        engine.withFlow(slot, body)
    }

    /// packetsIn == forwarded + passed through + consumed + dropped (every packet has one verdict).
    var countersAddUp: Bool {
        let c = engine.counters
        return c.packetsIn == c.packetsForwarded + c.packetsPassedThrough + c.packetsConsumed + c.totalDrops
    }
}

// MARK: Reference checksums and expected rewrites

/// RFC 1071 by the book (byte pairs, end-around carry), independent of Wire's word-at-a-time
/// sum: the expected values in these tests never come from the code under test.
func referenceSum(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> UInt16 {
    var acc = initial
    var i = bytes.startIndex
    while i < bytes.endIndex {
        let hi = UInt32(bytes[i])
        let lo = i + 1 < bytes.endIndex ? UInt32(bytes[i + 1]) : 0
        acc += hi << 8 | lo
        acc = (acc & 0xFFFF) + (acc >> 16)
        i += 2
    }
    while acc >> 16 != 0 { acc = (acc & 0xFFFF) + (acc >> 16) }
    return UInt16(acc)
}

/// `packet` with its IPv4 header checksum and TCP checksum recomputed from scratch.
func recomputedChecksums(_ packet: [UInt8]) -> [UInt8] {
    var b = packet
    let ihl = Int(b[0] & 0x0F) * 4
    let total = Int(b[2]) << 8 | Int(b[3])
    b[10] = 0; b[11] = 0
    let ipSum = ~referenceSum(b[0..<ihl])
    b[10] = UInt8(ipSum >> 8); b[11] = UInt8(ipSum & 0xFF)
    b[ihl + 16] = 0; b[ihl + 17] = 0
    var pseudo: UInt32 = 6 + UInt32(total - ihl)
    for i in stride(from: 12, to: 20, by: 2) { pseudo += UInt32(b[i]) << 8 | UInt32(b[i + 1]) }
    let tcpSum = ~referenceSum(b[ihl..<total], initial: pseudo)
    b[ihl + 16] = UInt8(tcpSum >> 8); b[ihl + 17] = UInt8(tcpSum & 0xFF)
    return b
}

/// `packet` with the given fields overwritten byte by byte and both checksums recomputed
/// from scratch: what a correct rewrite must produce, bit for bit.
func edited(_ packet: [UInt8], src: String? = nil, dst: String? = nil, seq: UInt32? = nil,
            ack: UInt32? = nil, sack: [(UInt32, UInt32)]? = nil) -> [UInt8] {
    var b = packet
    let t = Int(b[0] & 0x0F) * 4
    func put32(_ o: Int, _ v: UInt32) { for k in 0..<4 { b[o + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(k))) } }
    func put16(_ o: Int, _ v: UInt16) { b[o] = UInt8(v >> 8); b[o + 1] = UInt8(v & 0xFF) }
    if let src { let e = endpoint(src); put32(12, e.address.ipv4!.value); put16(t, e.port) }
    if let dst { let e = endpoint(dst); put32(16, e.address.ipv4!.value); put16(t + 2, e.port) }
    if let seq { put32(t + 4, seq) }
    if let ack { put32(t + 8, ack) }
    if let sack {
        // Walk the options by hand to the SACK option (kind 5).
        let end = t + Int(b[t + 12] >> 4) * 4
        var o = t + 20
        while o < end {
            if b[o] == 0 { break }
            if b[o] == 1 { o += 1; continue }
            if b[o] == 5 {
                for (i, block) in sack.enumerated() { put32(o + 2 + 8 * i, block.0); put32(o + 6 + 8 * i, block.1) }
                break
            }
            o += Int(b[o + 1])
        }
    }
    return recomputedChecksums(b)
}

// MARK: The packets of a scripted exchange

/// Builds the packets of one device-server conversation in transparent mode (or toward a
/// service address), so a test reads as the exchange itself: `c.device(.ack, seq: 1001, ack: 5001)`.
struct Conversation {
    /// The device's endpoint.
    var device: String = Lab.device
    /// What the device connects to (the server, or a VIP).
    var original: String = Lab.server
    /// The real server.
    var server: String = Lab.server
    /// The NAT endpoint the server sees.
    var nat: String = Lab.firstNAT

    /// A packet the device sends (as read from the device interface).
    func device(_ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, window: UInt16 = 65535,
                options: [TCPOption] = [], payload: [UInt8] = [], id: UInt16 = 0) -> [UInt8] {
        tcp4(src: device, dst: original, flags: flags, seq: seq, ack: ack, window: window,
             options: options, payload: payload, id: id)
    }

    /// A packet the server sends (to the NAT endpoint).
    func server(_ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0, window: UInt16 = 65535,
                options: [TCPOption] = [], payload: [UInt8] = [], id: UInt16 = 0) -> [UInt8] {
        tcp4(src: server, dst: nat, flags: flags, seq: seq, ack: ack, window: window,
             options: options, payload: payload, id: id)
    }

    /// What the engine must write for a device packet: source NAT, destination the server.
    func towardServer(_ packet: [UInt8], seq: UInt32? = nil, ack: UInt32? = nil, sack: [(UInt32, UInt32)]? = nil) -> [UInt8] {
        edited(packet, src: nat, dst: server, seq: seq, ack: ack, sack: sack)
    }

    /// What the engine must write for a server packet: from the original destination to the device.
    func towardDevice(_ packet: [UInt8], seq: UInt32? = nil, ack: UInt32? = nil, sack: [(UInt32, UInt32)]? = nil) -> [UInt8] {
        edited(packet, src: original, dst: device, seq: seq, ack: ack, sack: sack)
    }

    /// Sends a device packet and checks it was forwarded as `towardServer` says.
    @discardableResult
    func deviceSends(_ h: EngineHarness, _ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0,
                     payload: [UInt8] = [], options: [TCPOption] = [],
                     sourceLocation: SourceLocation = #_sourceLocation) -> Outcome {
        let p = device(flags, seq: seq, ack: ack, options: options, payload: payload)
        let out = h.send(p)
        #expect(out.verdict == .forward, sourceLocation: sourceLocation)
        #expect(out.bytes == towardServer(p), sourceLocation: sourceLocation)
        return out
    }

    /// Sends a server packet and checks it was forwarded as `towardDevice` says.
    @discardableResult
    func serverSends(_ h: EngineHarness, _ flags: TCPFlags, seq: UInt32, ack: UInt32 = 0,
                     payload: [UInt8] = [], options: [TCPOption] = [],
                     sourceLocation: SourceLocation = #_sourceLocation) -> Outcome {
        let p = server(flags, seq: seq, ack: ack, options: options, payload: payload)
        let out = h.send(p)
        #expect(out.verdict == .forward, sourceLocation: sourceLocation)
        #expect(out.bytes == towardDevice(p), sourceLocation: sourceLocation)
        return out
    }

    /// The three-way handshake with device ISN `c` and server ISN `s`; the flow ends established.
    func handshake(_ h: EngineHarness, c: UInt32 = 1000, s: UInt32 = 5000,
                   sourceLocation: SourceLocation = #_sourceLocation) {
        deviceSends(h, .syn, seq: c, options: [.maximumSegmentSize(1460)], sourceLocation: sourceLocation)
        serverSends(h, [.syn, .ack], seq: s, ack: c &+ 1, options: [.maximumSegmentSize(1460)], sourceLocation: sourceLocation)
        deviceSends(h, .ack, seq: c &+ 1, ack: s &+ 1, sourceLocation: sourceLocation)
    }
}

/// Bytes 0, 1, 2, ... (mod 256) starting at `from`: payloads whose every byte says where it is.
func pattern(_ count: Int, from: Int = 0) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: from + $0) } }
