@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// Whole migrations end to end, packet by packet (pause, cut, drain, splice), with data both
/// ways and both streams checked byte for byte, also across the 2^32 wrap; and there and back
/// again (laptop -> phone -> laptop), where offsets, windows and clocks chain.
extension MigrationRollbackTests {
    struct Numbers: Sendable, CustomTestStringConvertible {
        var name: String
        var laptopISN: UInt32, serverISN: UInt32, phoneISN: UInt32
        var laptopClock: UInt32, serverClock: UInt32, phoneClock: UInt32
        var testDescription: String { name }
    }

    static let numbers: [Numbers] = [
        Numbers(name: "far from the wrap", laptopISN: 1_000_000, serverISN: 3_000_000_000, phoneISN: 777_000,
                laptopClock: 7_000_000, serverClock: 400_000, phoneClock: 50),
        // Every sequence space and every clock crosses 2^32 during the pause, drain or splice:
        // the server's at its offset 5000 (inside the cache), the laptop's at 127 (its data
        // during the pause), the phone's at 95 (its data before the splice); the clocks at once.
        Numbers(name: "across the 2^32 wrap", laptopISN: 0xFFFF_FF80, serverISN: 0xFFFF_FFFF &- 5000, phoneISN: 0xFFFF_FFA0,
                laptopClock: 0xFFFF_FFF8, serverClock: 0xFFFF_FFFA, phoneClock: 0xFFFF_FF00),
    ]

    @Test("a whole migration with data both ways: each stream is exact, TSval never goes back at the server (IPv4, IPv6)",
          arguments: numbers, IPFamily.allCases)
    func wholeMigration(_ n: Numbers, _ family: IPFamily) throws {
        let h = H(laptopISN: n.laptopISN, serverISN: n.serverISN, phoneISN: n.phoneISN,
                  laptopClock: n.laptopClock, serverClock: n.serverClock, phoneClock: n.phoneClock, family: family)
        let lab = h.lab
        var laptop = StreamReceiver()   // the server's stream as the laptop got it
        var phone = StreamReceiver()    // ... as the phone got it
        var server = StreamReceiver()   // the device side's stream as the server got it
        var towardServer: [DecodedTCP4] = []
        func note(_ o: Outcome) throws {
            var all = try o.packets()
            if o.verdict == .forward { all.append(try o.decoded) }
            for p in all {
                if p.destination == lab.server {
                    towardServer.append(p)
                    if !p.payload.isEmpty { server.take(p, offset: deviceOffset(h, p.seq)) }
                    #expect(p.source == lab.nat)
                } else if p.destination == lab.laptop, !p.payload.isEmpty {
                    laptop.take(p, offset: h.serverOffset(p.seq))
                } else if p.destination == lab.phone, !p.payload.isEmpty {
                    phone.take(p, offset: h.serverOffset(p.seq))
                }
                #expect(p.checksumsValid)
            }
        }
        h.handshake()
        try note(h.send(h.fromLaptop(at: 0, ack: 0, length: 120)))
        for o in h.serverSends(0, 3 * 1448, ack: 120) { try note(o) }
        try note(h.send(h.fromLaptop(at: 120, ack: 2 * 1448)))

        // Pause; the laptop's 80 bytes in flight reach the server; the server's last flight is cached.
        let (mid, start) = try h.migrate(settleWait: .milliseconds(500))
        towardServer += start.filter { $0.destination == lab.server }
        try note(h.send(h.fromLaptop(at: 120, ack: 2 * 1448, length: 80)))
        for o in h.serverSends(3 * 1448, 5 * 1448, ack: 120) {
            #expect(o.verdict == .consumed)
            try note(o)
        }
        try note(h.send(h.fromLaptop(at: 200, ack: 3 * 1448)))
        #expect(h.report(mid)?.phase == .paused)
        try note(h.send(h.fromServer(at: 5 * 1448, ack: 200)))
        let cutReport = try #require(h.report(mid))
        #expect(cutReport.phase == .oldDeviceCut)
        #expect(cutReport.cutOffsetToDevice == UInt64(3 * 1448) && cutReport.cutOffsetToServer == 200)
        let cut = 3 * 1448

        // The phone connects; sends 150 bytes before the splice; takes the cache.
        let syn = h.send(h.phoneSyn())
        let synAck = try #require(try syn.packets().first)
        #expect(synAck.seq == SeqNumber(h.s(cut) &- 1))
        let connect = h.send(h.fromPhone(at: 0, ack: cut))
        try note(connect)
        let flight = try connect.packets()
        let early = h.send(h.fromPhone(at: 0, ack: cut, length: 150, streamBase: 200))
        #expect(early.verdict == .forward)
        try note(early)
        let early1 = try early.decoded
        #expect(early1.seq == SeqNumber(h.l(200)) && early1.window == 0 && early1.ack == SeqNumber(h.s(5 * 1448)))
        // Drain (noting what the phone gets).
        var queue = h.segmentsToPhone(flight)
        while !queue.isEmpty {
            let seg = queue.removeFirst()
            phone.take(seg, offset: h.serverOffset(seg.seq))
            let o = h.send(h.fromPhone(at: 150, ack: phone.expected(from: cut)))
            try note(o)
            queue += h.segmentsToPhone(try o.packets())
        }
        #expect(h.report(mid)?.phase == .spliced)

        // After the splice: the server acks the phone's bytes and sends more; the phone sends more.
        let last = try #require(towardServer.last?.timestamp?.value)
        let more = h.send(h.fromServer(at: 5 * 1448, ack: 350, length: 1448, echo: last))
        #expect(more.verdict == .forward)
        try note(more)
        let m = try more.decoded
        #expect(m.destination == lab.phone && m.ack == SeqNumber(h.p(150)))
        let tsOffset = try #require(h.internalFlow?.toServer.tsOffset)
        #expect(m.timestamp.map { $0.echoReply } == last &- tsOffset)
        try note(h.send(h.fromPhone(at: 150, ack: 6 * 1448, length: 100, streamBase: 200)))

        // The streams: the laptop's bytes up to the cut then the phone's are the server's stream;
        // the server got the laptop's bytes up to its cut then the phone's.
        #expect(difference(laptop.stream(0, cut), serverBytes(0..<cut)) == nil)
        #expect(difference(phone.stream(cut, 6 * 1448), serverBytes(cut..<(6 * 1448))) == nil)
        #expect(phone.bytes.keys.min() == cut)
        #expect(difference(server.stream(0, 450), deviceBytes(0..<450)) == nil)
        #expect(server.bytes.count == 450)
        // PAWS at the server (RFC 7323 §5): TSval never goes back.
        let tsvals = towardServer.compactMap { $0.timestamp?.value }
        #expect(tsvals.count == towardServer.count)
        for (a, b) in zip(tsvals, tsvals.dropFirst()) {
            #expect(SeqNumber(b).greaterThanOrEqual(SeqNumber(a)), "TSval \(b) after \(a)")
        }
        // The pause: every segment toward the server had window 0 until the splice ACK.
        let spliceIndex = try #require(towardServer.firstIndex { $0.window != 0 && $0.seq == SeqNumber(h.l(350)) && $0.payload.isEmpty })
        let pausedStart = try #require(towardServer.firstIndex { $0.window == 0 })
        #expect(towardServer[pausedStart..<spliceIndex].allSatisfy { $0.window == 0 })
        // Every packet got one verdict; none was dropped; the migration is over.
        let c = h.engine.counters
        #expect(c.packetsIn == c.packetsForwarded + c.packetsPassedThrough + c.packetsConsumed + c.totalDrops)
        #expect(c.totalDrops == 0 && c.generatedOverflow == 0)
        #expect(h.engine.activeMigrationCount == 0 && h.engine.flowCount == 1)
    }
    @Test("there and back: laptop -> phone (no window scaling) -> the laptop again on a new port; offsets, windows, clocks chain")
    func thereAndBack() throws {
        let h = H.established(downloaded: 2 * 1448, acked: 2 * 1448, phone: EndOptions(windowScale: nil))
        h.phoneWindow = 65535
        var towardServer: [DecodedTCP4] = []
        func note(_ o: Outcome) throws {
            var all = try o.packets()
            if o.verdict == .forward { all.append(try o.decoded) }
            towardServer += all.filter { $0.destination == MigrationLab.server }
        }
        // Leg 1: to the phone.
        let (m1, start1) = try h.migrate()
        towardServer += start1.filter { $0.destination == MigrationLab.server }
        _ = try h.timers()
        for o in h.serverSends(2 * 1448, 4 * 1448, ack: 120) { try note(o) }
        let syn1 = h.send(h.phoneSyn())
        #expect(try syn1.packets().first?.windowScale == nil)
        let connect1 = h.send(h.fromPhone(at: 0, ack: 2 * 1448))
        try note(connect1)
        var phone = StreamReceiver()
        var queue = h.segmentsToPhone(try connect1.packets())
        while !queue.isEmpty {
            let seg = queue.removeFirst()
            phone.take(seg, offset: h.serverOffset(seg.seq))
            let o = h.send(h.fromPhone(at: 0, ack: phone.expected(from: 2 * 1448)))
            try note(o)
            queue += h.segmentsToPhone(try o.packets())
        }
        #expect(h.report(m1)?.phase == .spliced)
        // The phone downloads and uploads a little.
        let end1 = 4 * 1448
        for o in h.serverSends(end1, end1 + 2 * 1448, ack: 120) {
            let d = try o.decoded
            #expect(d.destination == MigrationLab.phone && d.window == 65152)
            phone.take(d, offset: h.serverOffset(d.seq))
        }
        let end2 = end1 + 2 * 1448
        try note(h.send(h.fromPhone(at: 0, ack: end2)))
        try note(h.send(h.fromPhone(at: 0, ack: end2, length: 50, streamBase: 120)))
        #expect(towardServer.last?.seq == SeqNumber(h.l(120)))
        #expect(h.send(h.fromServer(at: end2, ack: 170, echo: towardServer.last?.timestamp?.value)).verdict == .forward)

        // Leg 2: back to the laptop, from port 40001.
        let laptop2 = endpoint("10.1.0.2:40001")
        let (r2, start2) = try h.startMigration(to: MigrationTarget(address: laptop2.address, port: laptop2.port))
        let m2 = try r2.get()
        towardServer += start2.filter { $0.destination == MigrationLab.server }
        let freeze = try #require(start2.first { $0.destination == MigrationLab.server })
        #expect(freeze.seq == SeqNumber(h.l(170)) && freeze.ack == SeqNumber(h.s(end2)) && freeze.window == 0)
        #expect(start2.contains { $0.destination == MigrationLab.phone && $0.window == 0 })
        _ = try h.timers()
        let cut2 = try #require(h.report(m2))
        #expect(cut2.phase == .oldDeviceCut)
        #expect(cut2.cutOffsetToDevice == UInt64(end2) && cut2.cutOffsetToServer == 170)
        #expect(cut2.oldDevice == MigrationLab.phone)
        for o in h.serverSends(end2, end2 + 2 * 1448, ack: 170) { try note(o) }
        h.phone = laptop2
        h.phoneISN = 9_000_000
        h.phoneClock = 5
        h.phoneOptions = .linux
        h.phoneWindow = 502
        let syn2 = try #require(try h.send(h.phoneSyn()).packets().first)
        #expect(syn2.destination == laptop2 && syn2.seq == SeqNumber(h.s(end2) &- 1) && syn2.windowScale == 7)
        let connect2 = h.send(h.fromPhone(at: 0, ack: end2))
        try note(connect2)
        var laptop = StreamReceiver()
        queue = h.segmentsToPhone(try connect2.packets())
        var last: [DecodedTCP4] = []
        while !queue.isEmpty {
            let seg = queue.removeFirst()
            laptop.take(seg, offset: h.serverOffset(seg.seq))
            let o = h.send(h.fromPhone(at: 0, ack: laptop.expected(from: end2)))
            try note(o)
            last = try o.packets()
            queue += h.segmentsToPhone(last)
        }
        #expect(h.report(m2)?.phase == .spliced)
        let end3 = end2 + 2 * 1448
        #expect(difference(laptop.stream(end2, end3), serverBytes(end2..<end3)) == nil)
        #expect(difference(phone.stream(2 * 1448, end2), serverBytes((2 * 1448)..<end2)) == nil)
        let rst = try #require(last.first { $0.destination == MigrationLab.phone })
        #expect(rst.flags == .rst && rst.seq == SeqNumber(h.s(end2)))
        #expect(last.first { $0.destination == MigrationLab.server }?.window == 502)

        // Plain forwarding with the laptop's new sub-connection: windows in its own scale.
        let down = try h.send(h.fromServer(at: end3, ack: 170, length: 1448, window: 509)).decoded
        #expect(down.destination == laptop2 && down.seq == SeqNumber(h.s(end3)) && down.ack == SeqNumber(h.p(0)))
        #expect(down.window == 509)
        let upOutcome = h.send(h.fromPhone(at: 0, ack: end3 + 1448, length: 30, window: 400, streamBase: 170))
        try note(upOutcome)
        let up = try upOutcome.decoded
        #expect(up.seq == SeqNumber(h.l(170)) && up.window == 400)
        #expect(difference(up.payload, deviceBytes(170..<200)) == nil)
        // PAWS at the server across both migrations.
        let tsvals = towardServer.compactMap { $0.timestamp?.value }
        #expect(tsvals.count == towardServer.count)
        for (a, b) in zip(tsvals, tsvals.dropFirst()) {
            #expect(SeqNumber(b).greaterThanOrEqual(SeqNumber(a)), "TSval \(b) after \(a)")
        }
    }
}
