@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Byte `i` of the server's stream and of the device side's stream (laptop, then phone): every
/// byte says where it belongs, with a period far above any test's length.
func serverByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 31 &+ (i >> 8) &+ 7) }
func deviceByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 17 &+ (i >> 9) &+ 101) }
func serverBytes(_ range: Range<Int>) -> [UInt8] { range.map(serverByte) }
func deviceBytes(_ range: Range<Int>) -> [UInt8] { range.map(deviceByte) }

extension Outcome {
    /// The generated packets, decoded.
    func packets() throws -> [DecodedTCP4] { try generated.map { try DecodedTCP4($0) } }
}

extension DecodedTCP4 {
    var ipLength: Int { source.family.headerLength + tcpHeaderLength + payload.count }
    var tcpHeaderLength: Int { 20 + options.reduce(0) { $0 + $1.encodedLength } }
}

/// One engine scripted through a migration: an injected clock, a generated batch as large as
/// the gateway's (256), and the three ends' sequence spaces and clocks. Offsets name bytes of
/// each stream (0 = the first byte after the SYN), so a test reads as "the server sends bytes
/// 2896..<4344" and the harness turns that into sequence numbers.
final class MigrationHarness {
    let engine: SpliceEngine
    private(set) var now = Instant(nanoseconds: 5_000_000_000)
    private let generated = PacketBatch(capacity: 256, maxPacket: 2048)

    let laptopOptions: EndOptions
    let serverOptions: EndOptions
    var phoneOptions: EndOptions
    /// Whether the server's SYN-ACK sets DF (Linux does, with path MTU discovery on).
    var serverDontFragment = true
    /// Initial sequence numbers.
    let laptopISN: UInt32
    let serverISN: UInt32
    var phoneISN: UInt32
    /// TSval clocks (RFC 7323): each end's next TSval; the phone's is far behind the laptop's,
    /// so PAWS at the server would drop its segments without the proxy's shift.
    var laptopClock: UInt32
    var serverClock: UInt32
    var phoneClock: UInt32
    /// Window fields (already scaled by each end's shift when it uses one).
    var laptopWindow: UInt16 = 502
    var serverWindow: UInt16 = 509
    var phoneWindow: UInt16 = 502

    private(set) var flowID = FlowID(0)
    /// The ends' addresses (IPv4 unless the harness was made for IPv6).
    let lab: LabEnds
    /// The device the flow migrates to (`fromPhone`, `phoneSyn` and `segmentsToPhone` use it).
    var phone: IPEndpoint
    /// Whom the laptop and the phone connect to: the server (transparent mode), or a service
    /// address of each one's family (`serviceConfig`).
    var laptopTarget: IPEndpoint
    var phoneTarget: IPEndpoint

    init(laptop: EndOptions = .linux, server: EndOptions = .linux, phone: EndOptions = .linux,
         laptopISN: UInt32 = 1_000_000, serverISN: UInt32 = 3_000_000_000, phoneISN: UInt32 = 777_000,
         laptopClock: UInt32 = 7_000_000, serverClock: UInt32 = 400_000, phoneClock: UInt32 = 50,
         limits: EngineLimits = EngineLimits(), kernelPath: KernelPathPolicy? = nil, family: IPFamily = .ipv4,
         config custom: EngineConfig? = nil) {
        lab = LabEnds.of(family)
        self.phone = lab.phone
        laptopTarget = lab.server
        phoneTarget = lab.server
        var config = custom ?? MigrationLab.config(limits: limits)
        config.kernelPath = kernelPath
        engine = SpliceEngine(config: config)
        laptopOptions = laptop; serverOptions = server; phoneOptions = phone
        self.laptopISN = laptopISN; self.serverISN = serverISN; self.phoneISN = phoneISN
        self.laptopClock = laptopClock; self.serverClock = serverClock; self.phoneClock = phoneClock
    }

    // MARK: Sequence numbers of stream offsets

    /// Server stream offset -> sequence number (the server's and every device's view).
    func s(_ offset: Int) -> UInt32 { serverISN &+ 1 &+ UInt32(truncatingIfNeeded: offset) }
    /// Device-side stream offset -> the laptop's (and the server's) sequence number.
    func l(_ offset: Int) -> UInt32 { laptopISN &+ 1 &+ UInt32(truncatingIfNeeded: offset) }
    /// The phone's own stream offset -> its sequence number.
    func p(_ offset: Int) -> UInt32 { phoneISN &+ 1 &+ UInt32(truncatingIfNeeded: offset) }

    var originalTimestamps: Bool { laptopOptions.timestamps && serverOptions.timestamps }
    var phoneTimestamps: Bool { originalTimestamps && phoneOptions.timestamps }

    // MARK: Driving the engine

    @discardableResult
    func send(_ packet: [UInt8]) -> Outcome {
        var bytes = packet
        generated.removeAll()
        let verdict = bytes.withUnsafeMutableBytes { engine.process($0, now: now, generated: generated) }
        return Outcome(verdict: verdict, bytes: bytes, generated: (0..<generated.count).map { generated.bytes($0) })
    }

    /// `runMigrationTimers` at the current time; returns what it generated.
    func timers() throws -> [DecodedTCP4] {
        generated.removeAll()
        engine.runMigrationTimers(now: now, generated: generated)
        return try (0..<generated.count).map { try DecodedTCP4(generated.bytes($0)) }
    }

    func advance(milliseconds: UInt64) { now = Instant(nanoseconds: now.nanoseconds + milliseconds * 1_000_000) }

    /// Starts migrating the flow to the phone's address; returns the result and what was generated.
    func startMigration(to target: MigrationTarget? = nil,
                        deadline: Duration = .seconds(10), settleWait: Duration = .seconds(1),
                        flow: FlowID? = nil) throws -> (Result<MigrationID, MigrationRefusal>, [DecodedTCP4]) {
        generated.removeAll()
        let r = engine.startMigration(flow: flow ?? flowID, to: target ?? MigrationTarget(address: lab.phoneAddress),
                                      deadline: deadline, settleWait: settleWait,
                                      now: now, generated: generated)
        return (r, try (0..<generated.count).map { try DecodedTCP4(generated.bytes($0)) })
    }

    /// Starts the migration, which must be accepted.
    func migrate(deadline: Duration = .seconds(10), settleWait: Duration = .seconds(1),
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> (MigrationID, [DecodedTCP4]) {
        let (r, out) = try startMigration(deadline: deadline, settleWait: settleWait)
        let mid = try #require(try? r.get(), "migration refused: \(r)", sourceLocation: sourceLocation)
        return (mid, out)
    }

    func report(_ mid: MigrationID) -> MigrationReport? { engine.migrationReport(mid, now: now) }

    var internalFlow: Flow? { engine.table.slot(id: flowID).flatMap { engine.table[slot: $0] } }
    var summary: FlowSummary? { engine.flowSummaries(now: now).first { $0.id == flowID } }
    var sender: EmulatedSender? { engine.migrations.values.first?.sender }

    // MARK: Packets

    private func ts(_ enabled: Bool, _ clock: inout UInt32, echo: UInt32) -> [TCPOption] {
        guard enabled else { return [] }
        defer { clock &+= 1 }
        return [.noOperation, .noOperation, .timestamp(value: clock, echoReply: echo)]
    }

    /// A segment from the server: `payload` at server offset `at`, acknowledging device-side
    /// offset `ack` (in the server's view), echoing `echo` (default: the laptop's last TSval).
    func fromServer(_ flags: TCPFlags = .ack, at offset: Int, ack: Int, length: Int = 0, window: UInt16? = nil,
                    echo: UInt32? = nil, extraOptions: [TCPOption] = [], seq: UInt32? = nil) -> [UInt8] {
        var f = flags
        if length > 0 { f.insert(.psh) }
        let options = extraOptions + ts(originalTimestamps, &serverClock, echo: echo ?? (laptopClock &- 1))
        return tcp4(src: lab.server, dst: lab.nat, flags: f, seq: seq ?? s(offset), ack: l(ack),
                    window: window ?? serverWindow, options: options, payload: serverBytes(offset..<(offset + length)))
    }

    /// A segment from the laptop: device-side bytes at `at`, acknowledging server offset `ack`.
    func fromLaptop(_ flags: TCPFlags = .ack, at offset: Int, ack: Int, length: Int = 0, window: UInt16? = nil,
                    sack: [(Int, Int)] = []) -> [UInt8] {
        var f = flags
        if length > 0 { f.insert(.psh) }
        var options: [TCPOption] = []
        if !sack.isEmpty { options = [.noOperation, .noOperation, .sack(sack.map { SackBlock(SeqNumber(s($0.0)), SeqNumber(s($0.1))) })] }
        options += ts(originalTimestamps, &laptopClock, echo: serverClock &- 1)
        return tcp4(src: lab.laptop, dst: laptopTarget, flags: f, seq: l(offset), ack: s(ack),
                    window: window ?? laptopWindow, options: options, payload: deviceBytes(offset..<(offset + length)))
    }

    /// A segment from the phone: bytes of its own stream at phone offset `at` (the device-side
    /// stream's bytes from `streamBase` on), acknowledging server offset `ack`.
    func fromPhone(_ flags: TCPFlags = .ack, at offset: Int, ack: Int, length: Int = 0, window: UInt16? = nil,
                   streamBase: Int = 0, sack: [(Int, Int)] = [], echo: UInt32? = nil) -> [UInt8] {
        var f = flags
        if length > 0 { f.insert(.psh) }
        var options: [TCPOption] = []
        if !sack.isEmpty { options = [.noOperation, .noOperation, .sack(sack.map { SackBlock(SeqNumber(s($0.0)), SeqNumber(s($0.1))) })] }
        options += ts(phoneTimestamps, &phoneClock, echo: echo ?? (serverClock &- 1))
        return tcp4(src: phone, dst: phoneTarget, flags: f, seq: p(offset), ack: s(ack),
                    window: window ?? phoneWindow, options: options,
                    payload: deviceBytes((streamBase + offset)..<(streamBase + offset + length)))
    }

    /// The phone's SYN (to the flow's destination, the server's address in transparent mode).
    func phoneSyn() -> [UInt8] {
        let o = phoneOptions.syn(tsval: phoneClock)
        if phoneOptions.timestamps { phoneClock &+= 1 }
        return tcp4(src: phone, dst: phoneTarget, flags: phoneOptions.ecn ? [.syn, .ece, .cwr] : .syn, seq: phoneISN,
                    window: 64240, options: o, ttl: MigrationLab.phoneTTL)
    }

    // MARK: Scenes

    /// The three-way handshake with the realistic options; the flow ends established.
    func handshake(sourceLocation: SourceLocation = #_sourceLocation) {
        let syn = tcp4(src: lab.laptop, dst: laptopTarget, flags: laptopOptions.ecn ? [.syn, .ece, .cwr] : .syn,
                       seq: laptopISN, window: 64240,
                       options: laptopOptions.syn(tsval: laptopClock), ttl: MigrationLab.laptopTTL)
        if laptopOptions.timestamps { laptopClock &+= 1 }
        #expect(send(syn).verdict == .forward, sourceLocation: sourceLocation)
        let echo = laptopOptions.timestamps ? laptopClock &- 1 : 0
        var serverSyn = serverOptions
        if !laptopOptions.timestamps { serverSyn.timestamps = false }
        if laptopOptions.windowScale == nil { serverSyn.windowScale = nil }
        if !laptopOptions.sack { serverSyn.sack = false }
        let synAck = tcp4(src: lab.server, dst: lab.nat,
                          flags: serverOptions.ecn && laptopOptions.ecn ? [.syn, .ack, .ece] : [.syn, .ack], seq: serverISN,
                          ack: laptopISN &+ 1, window: 65160, options: serverSyn.syn(tsval: serverClock, tsecr: echo),
                          ttl: MigrationLab.serverTTL, dontFragment: serverDontFragment)
        if serverSyn.timestamps { serverClock &+= 1 }
        #expect(send(synAck).verdict == .forward, sourceLocation: sourceLocation)
        #expect(send(fromLaptop(at: 0, ack: 0)).verdict == .forward, sourceLocation: sourceLocation)
        flowID = engine.flowSummaries(now: now).first { $0.device == lab.laptop }?.id ?? FlowID(0)
        #expect(summary?.state == .established, sourceLocation: sourceLocation)
    }

    /// The server sends `[from, to)` of its stream in `segment`-sized pieces (Linux with
    /// timestamps: 1448), each forwarded to the laptop unchanged but for the addresses.
    func serverSends(_ from: Int, _ to: Int, segment: Int = 1448, ack: Int,
                     sourceLocation: SourceLocation = #_sourceLocation) -> [Outcome] {
        var out: [Outcome] = []
        var o = from
        while o < to {
            let n = min(segment, to - o)
            out.append(send(fromServer(at: o, ack: ack, length: n)))
            o += n
        }
        return out
    }

    /// An established flow in which the laptop sent a 120-byte request that the server
    /// acknowledged, and the server sent `downloaded` bytes of which the laptop acknowledged
    /// `acked`.
    static func established(downloaded: Int = 4 * 1448, acked: Int = 4 * 1448,
                            laptop: EndOptions = .linux, server: EndOptions = .linux, phone: EndOptions = .linux,
                            laptopISN: UInt32 = 1_000_000, serverISN: UInt32 = 3_000_000_000, phoneISN: UInt32 = 777_000,
                            laptopClock: UInt32 = 7_000_000, serverClock: UInt32 = 400_000, phoneClock: UInt32 = 50,
                            limits: EngineLimits = EngineLimits(), kernelPath: KernelPathPolicy? = nil, family: IPFamily = .ipv4,
                            sourceLocation: SourceLocation = #_sourceLocation) -> MigrationHarness {
        let h = MigrationHarness(laptop: laptop, server: server, phone: phone, laptopISN: laptopISN, serverISN: serverISN,
                                 phoneISN: phoneISN, laptopClock: laptopClock, serverClock: serverClock,
                                 phoneClock: phoneClock, limits: limits, kernelPath: kernelPath, family: family)
        h.handshake(sourceLocation: sourceLocation)
        let request = h.send(h.fromLaptop(at: 0, ack: 0, length: 120))
        #expect(request.verdict == .forward, sourceLocation: sourceLocation)
        for o in h.serverSends(0, downloaded, ack: 120) {
            #expect(o.verdict == .forward, sourceLocation: sourceLocation)
        }
        if downloaded == 0 { h.send(h.fromServer(at: 0, ack: 120)) }
        h.send(h.fromLaptop(at: 120, ack: acked))
        return h
    }
}

// MARK: The phone as a receiver

/// What a device received of the server's stream, by stream offset: the test reassembles it
/// and acknowledges cumulatively, as a TCP receiver would.
struct StreamReceiver {
    private(set) var bytes: [Int: UInt8] = [:]
    private(set) var finOffset: Int?
    /// Segments received (retransmissions included).
    private(set) var segments = 0

    init() {}

    mutating func take(_ p: DecodedTCP4, offset: Int) {
        segments += 1
        var changed: Int?
        for (i, b) in p.payload.enumerated() {
            // A byte received twice must be the same byte.
            if let old = bytes[offset + i], old != b, changed == nil { changed = offset + i }
            bytes[offset + i] = b
        }
        #expect(changed == nil, "a byte received again differs (stream offset \(changed ?? 0))")
        if p.flags.contains(.fin) { finOffset = offset + p.payload.count }
    }

    /// The next byte expected from `start` on (what a cumulative ack says), the FIN counted.
    func expected(from start: Int) -> Int {
        var e = start
        while bytes[e] != nil { e += 1 }
        if finOffset == e { e += 1 }
        return e
    }

    /// The contiguous bytes `[from, to)`, or nil when one is missing.
    func stream(_ from: Int, _ to: Int) -> [UInt8]? {
        var out: [UInt8] = []
        for i in from..<to {
            guard let b = bytes[i] else { return nil }
            out.append(b)
        }
        return out
    }
}

extension MigrationHarness {
    /// The server stream offset of a sequence number in the server's (and the devices') space.
    func serverOffset(_ seq: SeqNumber) -> Int { Int(SeqNumber(s(0)).distance(to: seq)) }

    /// Segments the proxy sends the phone carrying server bytes or FIN.
    func segmentsToPhone(_ packets: [DecodedTCP4]) -> [DecodedTCP4] {
        packets.filter { $0.destination == phone && !$0.flags.contains(.rst) && !$0.flags.contains(.syn)
            && (!$0.payload.isEmpty || $0.flags.contains(.fin)) }
    }

    /// The phone takes `first` and every segment the proxy sends after, in order, acknowledging
    /// each one cumulatively (with its own stream at `phoneAt`), until the proxy sends nothing
    /// more. Returns the packets generated by the last ack (the splice's ACK and RST, if any).
    @discardableResult
    func phoneDrains(_ first: [DecodedTCP4], into receiver: inout StreamReceiver, cut: Int, phoneAt: Int = 0,
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> [DecodedTCP4] {
        var queue = segmentsToPhone(first)
        var last: [DecodedTCP4] = []
        var rounds = 0
        while !queue.isEmpty {
            rounds += 1
            guard rounds < 10_000 else { Issue.record("drain does not end", sourceLocation: sourceLocation); break }
            let seg = queue.removeFirst()
            #expect(seg.checksumsValid, sourceLocation: sourceLocation)
            receiver.take(seg, offset: serverOffset(seg.seq))
            let o = send(fromPhone(at: phoneAt, ack: receiver.expected(from: cut)))
            #expect(o.verdict == .consumed, sourceLocation: sourceLocation)
            last = try o.packets()
            queue += segmentsToPhone(last)
        }
        return last
    }

    /// The phone connects (SYN, then the handshake ACK once the SYN-ACK came); returns the SYN-ACK
    /// and the first flight of cached bytes.
    func phoneConnects(cut: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> (synAck: DecodedTCP4, flight: [DecodedTCP4]) {
        let syn = send(phoneSyn())
        #expect(syn.verdict == .consumed, sourceLocation: sourceLocation)
        let synAck = try #require(try syn.packets().first { $0.flags.contains(.syn) }, sourceLocation: sourceLocation)
        let ack = send(fromPhone(at: 0, ack: cut))
        #expect(ack.verdict == .consumed, sourceLocation: sourceLocation)
        return (synAck, try ack.packets())
    }
}

/// nil when `got` is exactly `want`; else a short description of the first difference (so a
/// failing byte comparison does not print kilobytes).
func difference(_ got: [UInt8]?, _ want: [UInt8]) -> String? {
    guard let got else { return "missing bytes (want \(want.count))" }
    if got == want { return nil }
    let i = (0..<min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
    return "\(got.count) bytes, want \(want.count); first difference at \(i)"
}
