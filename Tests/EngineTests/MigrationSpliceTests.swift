@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// DESIGN §6 step 5 and after: the splice once the new device took the whole cache (the
/// server's ACK with the phone's real window, the old device's RST), then plain forwarding
/// with the new offsets, SACK blocks, timestamps, window scales and MSS, and the FIN or data
/// either side sent during the pause.
extension MigrationResumeTests {
    /// A flow migrated to the phone with three cached segments; returns the migration.
    func spliced(_ h: H, cached: Int = 3 * 1448, sourceLocation: SourceLocation = #_sourceLocation) throws -> (MigrationID, [DecodedTCP4]) {
        let mid = try cutWithCache(h, cached: cached, sourceLocation: sourceLocation)
        let (_, flight) = try h.phoneConnects(cut: cut, sourceLocation: sourceLocation)
        var phone = StreamReceiver()
        let last = try h.phoneDrains(flight, into: &phone, cut: cut, sourceLocation: sourceLocation)
        #expect(difference(phone.stream(cut, cut + cached), serverBytes(cut..<(cut + cached))) == nil, sourceLocation: sourceLocation)
        #expect(h.report(mid)?.phase == .spliced, sourceLocation: sourceLocation)
        return (mid, last)
    }

    @Test("splice: the server gets the phone's real window acknowledging the whole cache; the laptop a RST at its RCV.NXT")
    func spliceAckAndReset() throws {
        let h = established()
        let laptopTS = h.laptopClock &- 1
        let (mid, last) = try spliced(h)
        let end = cut + 3 * 1448
        #expect(last.count == 2)
        let ack = try #require(last.first { $0.destination == MigrationLab.server })
        #expect(ack.source == MigrationLab.nat && ack.flags == .ack)
        #expect(ack.seq == SeqNumber(h.l(120)))
        #expect(ack.ack == SeqNumber(h.s(end)))
        #expect(ack.window == 502) // the phone's 502 << 7, in the laptop's scale 7
        // TSval: never below what the server saw (the laptop's last); TSecr: the server's last.
        #expect(ack.timestamp.map { SeqNumber($0.value).greaterThanOrEqual(SeqNumber(laptopTS)) } == true)
        #expect(ack.timestamp?.echoReply == h.serverClock &- 1)
        #expect(ack.checksumsValid)
        let rst = try #require(last.first { $0.destination == MigrationLab.laptop })
        #expect(rst.source == MigrationLab.server && rst.flags == .rst)
        #expect(rst.seq == SeqNumber(h.s(cut)))
        #expect(rst.checksumsValid)
        let report = try #require(h.report(mid))
        #expect(report.phases.map(\.phase) == [.requested, .paused, .oldDeviceCut, .newDeviceConnected, .cacheDrained, .spliced])
        #expect(report.newDevice == MigrationLab.phone && report.isFinished)
        #expect(report.cutOffsetToDevice == UInt64(cut) && report.cutOffsetToServer == 120)
        #expect(report.bytesCached == UInt64(3 * 1448))
        // Not done until bytes flow: the window update is kept until the server sends past the edge.
        #expect(h.engine.activeMigrationCount == 1)
        #expect(h.summary?.device == MigrationLab.phone && h.summary?.migration == nil && h.summary?.state == .established)
        #expect(h.send(h.fromServer(at: end, ack: 120, length: 100)).verdict == .forward)
        #expect(h.engine.activeMigrationCount == 0)
    }

    @Test("after the splice the laptop's late segments are absorbed (not leaked to the server) until the linger ends")
    func oldDeviceLateSegmentsAbsorbed() throws {
        let h = established()
        _ = try spliced(h)
        let late = h.send(h.fromLaptop(at: 120, ack: cut, length: 100))
        #expect(late.verdict == .consumed)
        #expect(try late.packets().isEmpty)
        // After the closed-flow linger (30 s) the key is forgotten: the laptop is just another host.
        h.advance(milliseconds: 31_000)
        h.engine.expire(now: h.now)
        #expect(h.send(h.fromLaptop(at: 220, ack: cut, length: 100)).verdict == .passThrough)
    }

    @Test("after the splice: offsets, SACK blocks and timestamps are right in both directions")
    func afterSplice() throws {
        let h = established()
        var seenByServer: [UInt32] = [h.laptopClock &- 1]
        let (_, last) = try spliced(h)
        seenByServer += last.compactMap { $0.destination == MigrationLab.server ? $0.timestamp?.value : nil }
        let end = cut + 3 * 1448
        let tsOffset = try #require(h.internalFlow?.toServer.tsOffset)

        // Phone -> server: two segments of its stream (the device side's bytes 120..<620 and
        // 1120..<1620), the first one lost on the way to the server.
        let phoneTS = h.phoneClock
        let d1 = h.send(h.fromPhone(at: 0, ack: end, length: 500, window: 400, streamBase: 120))
        #expect(d1.verdict == .forward)
        let f1 = try d1.decoded
        #expect(f1.source == MigrationLab.nat && f1.destination == MigrationLab.server)
        #expect(f1.seq == SeqNumber(h.l(120)) && f1.ack == SeqNumber(h.s(end)))
        #expect(f1.window == 400)
        #expect(difference(f1.payload, deviceBytes(120..<620)) == nil)
        #expect(f1.timestamp! == (phoneTS &+ tsOffset, h.serverClock &- 1))
        #expect(f1.checksumsValid)
        let d2 = try h.send(h.fromPhone(at: 1000, ack: end, length: 500, streamBase: 120)).decoded
        #expect(d2.seq == SeqNumber(h.l(1120)))
        seenByServer += [f1.timestamp!.value, d2.timestamp!.value]
        // PAWS (RFC 7323 §5): the server never sees a TSval go back.
        for (a, b) in zip(seenByServer, seenByServer.dropFirst()) {
            #expect(SeqNumber(b).greaterThanOrEqual(SeqNumber(a)), "TSval \(b) after \(a)")
        }

        // Server -> phone: a duplicate ack with a SACK block for the second segment (server's
        // view), echoing the shifted TSval; the phone sees its own space and its own clock.
        let sack = h.send(tcp4(src: MigrationLab.server, dst: MigrationLab.nat, flags: .ack, seq: h.s(end), ack: h.l(120),
                               window: 509, options: [.noOperation, .noOperation, .sack([SackBlock(SeqNumber(h.l(1120)), SeqNumber(h.l(1620)))]),
                                                      .noOperation, .noOperation, .timestamp(value: h.serverClock, echoReply: d2.timestamp!.value)]))
        #expect(sack.verdict == .forward)
        let s1 = try sack.decoded
        #expect(s1.source == MigrationLab.server && s1.destination == MigrationLab.phone)
        #expect(s1.seq == SeqNumber(h.s(end)) && s1.ack == SeqNumber(h.p(0)))
        #expect(s1.sackBlocks == [SackBlock(SeqNumber(h.p(1000)), SeqNumber(h.p(1500)))])
        #expect(s1.timestamp! == (h.serverClock, d2.timestamp!.value &- tsOffset))
        #expect(s1.window == 509)
        #expect(s1.checksumsValid)

        // Server data: its sequence numbers are unchanged (the phone was given the laptop's view).
        let data = h.send(h.fromServer(at: end, ack: 1120, length: 1448, echo: f1.timestamp!.value))
        #expect(data.verdict == .forward)
        let s2 = try data.decoded
        #expect(s2.seq == SeqNumber(h.s(end)) && s2.ack == SeqNumber(h.p(1000)))
        #expect(difference(s2.payload, serverBytes(end..<(end + 1448))) == nil)
        #expect(s2.timestamp?.echoReply == phoneTS)

        // Phone -> server: an ack with a SACK block of server data (its space is the server's).
        let pack = try h.send(h.fromPhone(at: 500, ack: end, sack: [(end + 1448, end + 2000)])).decoded
        #expect(pack.seq == SeqNumber(h.l(620)) && pack.ack == SeqNumber(h.s(end)))
        #expect(pack.sackBlocks == [SackBlock(SeqNumber(h.s(end + 1448)), SeqNumber(h.s(end + 2000)))])
        #expect(pack.checksumsValid)
        // The copy follows the phone's acks again.
        let ackAll = h.send(h.fromPhone(at: 1500, ack: end + 1448))
        #expect(ackAll.verdict == .forward)
        #expect(h.internalFlow?.inFlight?.count == 0)
    }

    @Test("window scales differ: the phone's windows are translated to the laptop's scale (RFC 7323 §2.3)",
          arguments: [UInt8(6), UInt8(9)])
    func windowTranslation(phoneShift: UInt8) throws {
        let h = established(phone: EndOptions(windowScale: phoneShift))
        let bytes = 502 << 7
        h.phoneWindow = UInt16(bytes >> Int(phoneShift))
        let (_, last) = try spliced(h)
        let ack = try #require(last.first { $0.destination == MigrationLab.server })
        #expect(Int(ack.window) == (Int(h.phoneWindow) << Int(phoneShift)) >> 7)
        let after = try h.send(h.fromPhone(at: 0, ack: cut + 3 * 1448, window: 1000)).decoded
        #expect(Int(after.window) == (1000 << Int(phoneShift)) >> 7)
        // The server's windows need no translation: the phone was offered the server's scale.
        #expect(try h.send(h.fromServer(at: cut + 3 * 1448, ack: 120, window: 333)).decoded.window == 333)
    }

    @Test("a phone without window scaling: its windows scaled down, the server's up to 65535 at most")
    func phoneWithoutWindowScale() throws {
        let h = established(phone: EndOptions(windowScale: nil))
        h.phoneWindow = 65535
        let (_, last) = try spliced(h)
        #expect(last.first { $0.destination == MigrationLab.server }?.window == 511)
        let fromServer = try h.send(h.fromServer(at: cut + 3 * 1448, ack: 120, window: 509)).decoded
        #expect(fromServer.window == 65152) // 509 << 7, unscaled for the phone
        let small = try h.send(h.fromServer(at: cut + 3 * 1448, ack: 120, window: 100)).decoded
        #expect(small.window == 100 << 7)
        let big = try h.send(h.fromServer(at: cut + 3 * 1448, ack: 120, window: 600)).decoded
        #expect(big.window == 65535)
        // A phone window below one unit of the server's scale (128 bytes) is not closed there.
        let tiny = try h.send(h.fromPhone(at: 0, ack: cut + 3 * 1448, window: 100)).decoded
        #expect(tiny.destination == MigrationLab.server && tiny.window == 1)
        #expect(try h.send(h.fromPhone(at: 0, ack: cut + 3 * 1448, window: 0)).decoded.window == 0)
    }

    @Test("a phone without timestamps: none in the drain (full 1460-byte segments), the server's neutralised after the splice")
    func phoneWithoutTimestamps() throws {
        let h = established(phone: EndOptions(timestamps: false))
        let mid = try cutWithCache(h, cached: 3 * 1448)
        let (synAck, flight) = try h.phoneConnects(cut: cut)
        #expect(synAck.timestamp == nil)
        #expect(flight.allSatisfy { $0.timestamp == nil })
        #expect(flight.map(\.payload.count) == [1460, 1460, 1424])
        var phone = StreamReceiver()
        try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(h.report(mid)?.phase == .spliced)
        let data = try h.send(h.fromServer(at: cut + 3 * 1448, ack: 120, length: 1448)).decoded
        #expect(data.timestamp == nil && data.ipLength == 1500)
        #expect(data.checksumsValid)
    }

    @Test("original without timestamps or window scaling: drain and splice with plain options")
    func plainOriginal() throws {
        let h = established(laptop: .plain, server: .plain)
        h.phoneWindow = 64240
        let mid = try cutWithCache(h, cached: 5 * 1448)
        let (synAck, flight) = try h.phoneConnects(cut: cut)
        #expect(synAck.significantOptions == [.maximumSegmentSize(1460), .sackPermitted])
        #expect(flight.map(\.payload.count) == [1460, 1460, 1460, 1460, 1400])
        #expect(flight.allSatisfy { $0.options.isEmpty && $0.window == 509 })
        var phone = StreamReceiver()
        let last = try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(difference(phone.stream(cut, cut + 5 * 1448), serverBytes(cut..<(cut + 5 * 1448))) == nil)
        #expect(h.report(mid)?.phase == .spliced)
        let ack = try #require(last.first { $0.destination == MigrationLab.server })
        #expect(ack.window == 64240 && ack.options.isEmpty)
        let d = try h.send(h.fromPhone(at: 0, ack: cut + 5 * 1448, length: 10, streamBase: 120)).decoded
        #expect(d.seq == SeqNumber(h.l(120)) && d.options.isEmpty && d.window == 64240)
    }

    @Test("both directions: the new device's data before the splice continues the stream (ack = pre-ack, window 0)")
    func phoneDataBeforeSplice() throws {
        let h = established()
        let cached = 12 * 1448
        let end = cut + cached
        let mid = try cutWithCache(h, cached: cached)
        let (_, flight) = try h.phoneConnects(cut: cut)
        #expect(flight.count == 10)
        // Three segments of data while the drain is under way; none acknowledges anything new,
        // and none counts as a duplicate ack (they carry data).
        var forwarded: [DecodedTCP4] = []
        for k in 0..<3 {
            let o = h.send(h.fromPhone(at: k * 100, ack: cut, length: 100, streamBase: 120))
            #expect(o.verdict == .forward)
            #expect(o.generated.isEmpty)
            forwarded.append(try o.decoded)
        }
        #expect(h.report(mid)?.retransmissions == 0)
        for (k, f) in forwarded.enumerated() {
            #expect(f.source == MigrationLab.nat && f.destination == MigrationLab.server)
            #expect(f.seq == SeqNumber(h.l(120 + k * 100)))
            #expect(f.ack == SeqNumber(h.s(end)) && f.window == 0)
            #expect(difference(f.payload, deviceBytes((120 + k * 100)..<(220 + k * 100))) == nil)
            #expect(SeqNumber(f.timestamp!.value).greaterThan(SeqNumber(h.laptopClock &- 1)))
            #expect(f.checksumsValid)
        }
        // The server acknowledges them: the phone learns it, in its own space.
        let sa = h.send(h.fromServer(at: end, ack: 420, echo: forwarded[2].timestamp!.value))
        #expect(sa.verdict == .consumed)
        let toPhone = try sa.packets().filter { $0.destination == MigrationLab.phone }
        #expect(toPhone.count == 1)
        #expect(toPhone.first?.ack == SeqNumber(h.p(300)))
        #expect(!(try sa.packets()).contains { $0.destination == MigrationLab.server })
        // The drain ends: the splice ACK continues the phone's stream at its end.
        var phone = StreamReceiver()
        let last = try h.phoneDrains(flight, into: &phone, cut: cut, phoneAt: 300)
        #expect(difference(phone.stream(cut, end), serverBytes(cut..<end)) == nil)
        let splice = try #require(last.first { $0.destination == MigrationLab.server })
        #expect(splice.seq == SeqNumber(h.l(420)) && splice.ack == SeqNumber(h.s(end)) && splice.window == 502)
        #expect(h.report(mid)?.phase == .spliced)
        #expect(h.report(mid)?.cutOffsetToServer == 120)
        // And its next byte follows.
        let next = try h.send(h.fromPhone(at: 300, ack: end, length: 10, streamBase: 120)).decoded
        #expect(next.seq == SeqNumber(h.l(420)) && next.window == 502)
    }

    @Test("a segment larger than the new device's MSS is split after the splice (counters.segmentsSplit)")
    func splitForSmallerMSS() throws {
        let h = established(phone: EndOptions(mss: 1200))
        let mid = try cutWithCache(h, cached: 2 * 1448)
        let (synAck, flight) = try h.phoneConnects(cut: cut)
        #expect(synAck.maximumSegmentSize == 1460) // the server's, as the server would say
        #expect(flight.allSatisfy { $0.ipLength <= 1240 })
        #expect(flight.map(\.payload.count) == [1188, 1188, 520])
        var phone = StreamReceiver()
        try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(h.report(mid)?.phase == .spliced)
        let end = cut + 2 * 1448
        let big = h.send(h.fromServer(at: end, ack: 120, length: 1448))
        #expect(big.verdict == .consumed)
        let pieces = try big.packets()
        #expect(h.engine.counters.segmentsSplit == 1)
        #expect(pieces.count == 2)
        #expect(pieces.map(\.seq) == [SeqNumber(h.s(end)), SeqNumber(h.s(end + 1188))])
        #expect(pieces.allSatisfy { $0.ipLength <= 1240 && $0.checksumsValid && $0.destination == MigrationLab.phone })
        #expect(difference(pieces.flatMap { $0.payload }, serverBytes(end..<(end + 1448))) == nil)
        #expect(pieces.map { $0.flags.contains(.psh) } == [false, true])
        #expect(pieces.allSatisfy { $0.timestamp != nil && $0.ack == SeqNumber(h.p(0)) })
        // A segment that fits is forwarded as it is.
        #expect(h.send(h.fromServer(at: end + 1448, ack: 120, length: 1188)).verdict == .forward)
        #expect(h.engine.counters.segmentsSplit == 1)
        // One that fits with the timestamp option alone but also carries SACK blocks (the
        // server receiving too): its pieces leave room for all its options (RFC 9293 §3.7.1).
        let sack: [TCPOption] = [.noOperation, .noOperation, .sack([SackBlock(SeqNumber(h.l(500)), SeqNumber(h.l(600)))])]
        let withSack = h.send(h.fromServer(at: end + 2636, ack: 120, length: 1188, extraOptions: sack))
        #expect(withSack.verdict == .consumed)
        let sackPieces = try withSack.packets()
        #expect(sackPieces.count == 2 && h.engine.counters.segmentsSplit == 2)
        #expect(sackPieces.allSatisfy { $0.ipLength <= 1240 && $0.checksumsValid }, "\(sackPieces.map(\.ipLength))")
        #expect(difference(sackPieces.flatMap { $0.payload }, serverBytes((end + 2636)..<(end + 2636 + 1188))) == nil)
    }

    @Test("split with URG: pieces holding urgent data keep URG with the pointer ending where it did; later pieces carry none",
          arguments: [1300, 1000])
    func splitKeepsUrgentPointer(urgentPointer: Int) throws {
        let h = established(phone: EndOptions(mss: 1200))
        _ = try cutWithCache(h, cached: 0)
        var phone = StreamReceiver()
        let (_, flight) = try h.phoneConnects(cut: cut)
        try h.phoneDrains(flight, into: &phone, cut: cut)
        let urgent = Self.settingUrgentPointer(h.fromServer([.ack, .urg], at: cut, ack: 120, length: 1448), UInt16(urgentPointer))
        let pieces = try h.send(urgent).packets()
        #expect(pieces.map(\.payload.count) == [1188, 260] && pieces.allSatisfy(\.checksumsValid))
        #expect(pieces[0].flags.contains(.urg) && Int(pieces[0].urgentPointer) == urgentPointer)
        if urgentPointer > 1188 {
            #expect(pieces[1].flags.contains(.urg) && Int(pieces[1].urgentPointer) == urgentPointer - 1188)
        } else {
            #expect(!pieces[1].flags.contains(.urg) && pieces[1].urgentPointer == 0)
        }
    }

    /// `packet` (IPv4 without options) with its urgent pointer set, the TCP checksum updated
    /// (RFC 1624).
    static func settingUrgentPointer(_ packet: [UInt8], _ pointer: UInt16) -> [UInt8] {
        var b = packet
        let old = UInt16(b[38]) << 8 | UInt16(b[39])
        let check = UInt16(b[36]) << 8 | UInt16(b[37])
        var sum = UInt32(~check) + UInt32(~old) + UInt32(pointer)
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let new = ~UInt16(sum)
        b[36] = UInt8(new >> 8); b[37] = UInt8(new & 0xFF)
        b[38] = UInt8(pointer >> 8); b[39] = UInt8(pointer & 0xFF)
        return b
    }

    @Test("the server's FIN during the pause is cached, pre-acked and delivered after the data", arguments: [false, true])
    func serverFinDuringPause(withData: Bool) throws {
        let h = established()
        let (mid, _) = try h.migrate()
        _ = try h.timers()
        var out: [DecodedTCP4] = []
        if withData {
            out = try h.send(h.fromServer([.fin, .ack], at: cut, ack: 120, length: 1000)).packets()
        } else {
            _ = h.send(h.fromServer(at: cut, ack: 120, length: 1000))
            out = try h.send(h.fromServer([.fin, .ack], at: cut + 1000, ack: 120)).packets()
        }
        let preAck = try #require(out.first { $0.destination == MigrationLab.server })
        #expect(preAck.ack == SeqNumber(h.s(cut + 1001)) && preAck.window == 0)
        let (_, flight) = try h.phoneConnects(cut: cut)
        let segs = h.segmentsToPhone(flight)
        #expect(segs.count == 1)
        #expect(difference(segs.first?.payload, serverBytes(cut..<(cut + 1000))) == nil)
        #expect(segs.first?.flags.contains(.fin) == true)
        var phone = StreamReceiver()
        let last = try h.phoneDrains(flight, into: &phone, cut: cut)
        #expect(phone.finOffset == cut + 1000)
        let splice = try #require(last.first { $0.destination == MigrationLab.server })
        #expect(splice.ack == SeqNumber(h.s(cut + 1001)))
        #expect(h.report(mid)?.phase == .spliced)
        // The phone closes too: its FIN reaches the server in the laptop's stream.
        let fin = try h.send(h.fromPhone([.fin, .ack], at: 0, ack: cut + 1001)).decoded
        #expect(fin.flags.contains(.fin) && fin.seq == SeqNumber(h.l(120)))
    }

    @Test("a late duplicate of the new device's SYN after its handshake moves neither sequence nor timestamp offsets")
    func duplicateSynAfterHandshake() throws {
        let h = established()
        let mid = try cutWithCache(h, cached: 3 * 1448)
        let syn = h.phoneSyn()
        #expect(h.send(syn).verdict == .consumed)
        let flight = try h.send(h.fromPhone(at: 0, ack: cut)).packets()
        #expect(flight.count == 3)
        let d1 = try h.send(h.fromPhone(at: 0, ack: cut, length: 100, streamBase: 120)).decoded
        let before = try #require(h.engine.migrations[mid])
        #expect(h.send(syn).verdict == .consumed)
        let after = try #require(h.engine.migrations[mid])
        #expect(after.newDevice?.tsOffset == before.newDevice?.tsOffset && after.newDevice?.toServerOffset == before.newDevice?.toServerOffset)
        #expect(before.newDevice?.isConnected == true)
        let d2 = try h.send(h.fromPhone(at: 100, ack: cut, length: 100, streamBase: 120)).decoded
        #expect(d2.seq == SeqNumber(h.l(220)))
        #expect(d2.timestamp!.value == d1.timestamp!.value &+ 1) // the phone's clock moved by one
    }
}
