@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// The flow checkpoint (issue "Survive a proxy restart", item 1): its byte format round trip,
/// what it refuses and why, and an engine that adopts a checkpoint forwarding a flow exactly
/// as the engine that wrote it would have.
@Suite struct CheckpointCodecTests {
    static let setup: UInt64 = 0x1234_5678_9ABC_DEF0

    /// One flow of each kind: plain, spliced by a migration (offsets, scales, lacks), in the
    /// kernel, service mode (original differs from the server), closing (FINs), and IPv6.
    static var kinds: [FlowCheckpoint] {
        var plain = FlowCheckpoint(id: 1, device: endpoint("10.1.0.2:40000"), original: endpoint("10.2.0.2:8080"),
                                   server: endpoint("10.2.0.2:8080"), natPort: 61_000, state: .established)
        plain.deviceSyn.mss = 1460; plain.deviceSyn.windowScale = 7; plain.deviceSyn.sackPermitted = true
        plain.serverSyn.mss = 1400; plain.serverSyn.timestamps = true; plain.serverSyn.ecn = true
        var spliced = plain
        spliced.id = 2; spliced.device = endpoint("10.3.0.2:50000"); spliced.natPort = 61_001
        spliced.seqOffsetToServer = SequenceOffset(delta: 0xFFFF_FF00); spliced.seqOffsetToDevice = SequenceOffset(delta: 7)
        spliced.tsOffsetToServer = 0x8000_0001; spliced.tsOffsetToDevice = 3
        spliced.streamStartToServer = SeqNumber(1_000_001); spliced.streamStartToDevice = SeqNumber(0xFFFF_FFFF)
        spliced.serverViewOfDeviceShift = 7; spliced.deviceShiftOverride = 0; spliced.deviceViewOfServerShift = 14
        spliced.deviceMSS = 1220; spliced.deviceLacksSACK = true; spliced.deviceLacksTimestamps = true; spliced.deviceLacksECN = true
        var kernel = plain
        kernel.id = 3; kernel.natPort = 61_002; kernel.device = endpoint("10.1.0.2:40001"); kernel.inKernel = true
        var service = plain
        service.id = 4; service.natPort = 61_003; service.original = endpoint("10.9.9.9:80")
        var closing = plain
        closing.id = 5; closing.natPort = 61_004; closing.state = .halfClosed; closing.finToServer = SeqNumber(0)
        closing.device = endpoint("10.1.0.2:40002")
        let v6 = FlowCheckpoint(id: 6, device: IPEndpoint(string: "[2001:db8:1::2]:40000"), original: IPEndpoint(string: "[2001:db8:2::2]:443"),
                                server: IPEndpoint(string: "[2001:db8:2::2]:443"), natPort: 61_005, state: .synSent)
        var migrating = plain
        migrating.id = 7; migrating.natPort = 61_006; migrating.device = endpoint("10.1.0.2:40003")
        migrating.heldByMigration = true; migrating.migrationID = MigrationID(9)
        migrating.migrationTarget = endpoint("10.3.0.2:0")
        var freeze = CheckpointedFreeze(forwardedToDeviceEnd: SeqNumber(0xFFFF_FF00), forwardedToServerEnd: SeqNumber(5),
                                        serverAckServerView: SeqNumber(6))
        freeze.lastTSvalToServer = 77; freeze.serverFinSeq = SeqNumber(0x40); freeze.newDevice = endpoint("10.3.0.2:50000")
        migrating.freeze = freeze
        // Across the wrap of the sequence space, longer than one record.
        migrating.held = HeldBytes(start: SeqNumber(0xFFFF_F000), bytes: (0..<(CheckpointCodec.maxHeldChunk + 4_160)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        var awaiting = plain
        awaiting.id = 8; awaiting.natPort = 61_007; awaiting.device = endpoint("10.1.0.2:40004")
        awaiting.migrationID = MigrationID(11); awaiting.migrationTarget = endpoint("10.3.0.2:50001")
        return [plain, spliced, kernel, service, closing, v6, migrating, awaiting]
    }

    @Test("a migration's held bytes come back as one run: records continue it (overlap allowed), another migration's or a flow record without it drop it, gone drops it")
    func heldBytes() throws {
        var f = Self.kinds[6]
        let held = try #require(f.held)
        f.held = nil
        let mid = try #require(f.migrationID)
        // Per event: the record, then the bytes in pieces, one repeating the end of the last.
        var bytes = CheckpointCodec.header(setup: Self.setup) + CheckpointCodec.record(f)
        bytes += CheckpointCodec.held(f.id, migration: mid, start: held.start, bytes: held.bytes[0..<1000])
        bytes += CheckpointCodec.held(f.id, migration: mid, start: held.start + 900, bytes: held.bytes[900...])
        bytes += CheckpointCodec.record(f)   // a later event of the same migration keeps them
        var read = try CheckpointCodec.decode(bytes, setup: Self.setup)
        #expect(read.flows.first?.held == held)
        #expect(read.flows.first?.freeze == f.freeze)
        // Another migration of the flow: its own bytes only.
        var next = f
        next.migrationID = MigrationID(10)
        let other = CheckpointCodec.record(next) + CheckpointCodec.held(f.id, migration: MigrationID(10), start: SeqNumber(5), bytes: [1, 2, 3])
        read = try CheckpointCodec.decode(bytes + other, setup: Self.setup)
        #expect(read.flows.first?.held == HeldBytes(start: SeqNumber(5), bytes: [1, 2, 3]))
        // The migration ended: no bytes held.
        var ended = f
        ended.heldByMigration = false; ended.migrationID = nil; ended.freeze = nil
        read = try CheckpointCodec.decode(bytes + CheckpointCodec.record(ended), setup: Self.setup)
        #expect(read.flows.first?.held == nil && read.flows.first?.heldByMigration == false)
        // Gone, then the same id again (a new record) without the bytes.
        read = try CheckpointCodec.decode(bytes + CheckpointCodec.gone(f.id) + CheckpointCodec.record(f), setup: Self.setup)
        #expect(read.flows.first?.held == nil)
        // A record cut short inside the bytes: the run read so far (the pre-ack of the rest never left).
        let whole = CheckpointCodec.header(setup: Self.setup) + CheckpointCodec.record(f)
        let piece = CheckpointCodec.held(f.id, migration: mid, start: held.start, bytes: held.bytes[0..<500])
        read = try CheckpointCodec.decode(whole + piece + CheckpointCodec.held(f.id, migration: mid, start: held.start + 500, bytes: held.bytes[500..<600]).dropLast(3), setup: Self.setup)
        #expect(read.flows.first?.held?.bytes == Array(held.bytes[0..<500]) && read.tornTail != nil)
    }

    @Test("a format 1 checkpoint is read: a flow held by a migration comes back without the pause's facts (a restart resets it)")
    func formatOne() throws {
        let f = Self.kinds[6]
        // Format 1: the header says 1; the held flow's record ends after its migration's target.
        var header = CheckpointCodec.header(setup: Self.setup)
        header[9 + 8 + 1] = 1
        Self.reframe(&header)
        var record = CheckpointCodec.record(f)
        let freezeLength = 1 + 12 + 5 + 5 + 1 + 7 + 1   // has-freeze, ends and ack, TSval, FIN, new device (v4), sent
        record.removeLast(freezeLength)
        record[0...3] = [0, 0, UInt8((record.count - 8) >> 8), UInt8((record.count - 8) & 0xFF)]
        Self.reframe(&record)
        let read = try CheckpointCodec.decode(header + CheckpointCodec.record(Self.kinds[0]) + record, setup: Self.setup)
        var expected = f
        expected.freeze = nil; expected.held = nil
        #expect(read.flows == [Self.kinds[0], expected])
        // Held records are format 2: in a format 1 checkpoint they are damage.
        let held = CheckpointCodec.held(f.id, migration: f.migrationID!, start: SeqNumber(1), bytes: [1])
        #expect(throws: CheckpointError.self) { try CheckpointCodec.decode(header + record + held, setup: Self.setup) }
    }

    /// Recomputes a record's CRC after a test changed its bytes.
    static func reframe(_ record: inout [UInt8]) {
        let crc = CRC32C.checksum(record[8...])
        record[4] = UInt8(crc >> 24); record[5] = UInt8(crc >> 16 & 0xFF); record[6] = UInt8(crc >> 8 & 0xFF); record[7] = UInt8(crc & 0xFF)
    }

    @Test("each kind of flow comes back field for field; a later record replaces an earlier one; gone removes it")
    func roundTrip() throws {
        let kinds = Self.kinds
        var bytes = CheckpointCodec.snapshot(setup: Self.setup, flows: kinds)
        #expect(try CheckpointCodec.decode(bytes, setup: Self.setup) == .init(flows: kinds, tornTail: nil))
        var moved = kinds[0]
        moved.state = .halfClosed; moved.finToDevice = SeqNumber(99)
        bytes += CheckpointCodec.record(moved) + CheckpointCodec.gone(kinds[2].id)
        let read = try CheckpointCodec.decode(bytes, setup: Self.setup)
        #expect(read.flows == [moved] + kinds[1...1] + kinds[3...])
        #expect(read.tornTail == nil)
    }

    @Test("a record cut short at the end is reported and not applied; the records before it hold")
    func tornTail() throws {
        let kinds = Self.kinds
        let whole = CheckpointCodec.snapshot(setup: Self.setup, flows: Array(kinds.prefix(2)))
        var changed = kinds[0]
        changed.state = .closed
        let last = CheckpointCodec.record(changed)
        for cut in 1..<last.count {
            let read = try CheckpointCodec.decode(whole + last.prefix(cut), setup: Self.setup)
            #expect(read.flows == Array(kinds.prefix(2)), "cut at \(cut)")
            #expect(read.tornTail == .init(offset: whole.count, present: cut, expected: cut < 8 ? 8 : last.count))
        }
        // Shorter than the header: refused.
        let header = CheckpointCodec.header(setup: Self.setup)
        for cut in 1..<header.count {
            #expect(throws: CheckpointError.truncated(present: cut)) { try CheckpointCodec.decode(Array(header.prefix(cut)), setup: Self.setup) }
        }
    }

    @Test("refused with a reason: empty, not a checkpoint, a newer format, other options, a damaged record")
    func refusals() throws {
        let good = CheckpointCodec.snapshot(setup: Self.setup, flows: Self.kinds)
        #expect(throws: CheckpointError.empty) { try CheckpointCodec.decode([], setup: Self.setup) }
        #expect(throws: CheckpointError.notACheckpoint) { try CheckpointCodec.decode(Array("hello, world, this is text".utf8), setup: Self.setup) }
        #expect(throws: CheckpointError.otherSetup) { try CheckpointCodec.decode(good, setup: Self.setup ^ 1) }
        // Format 3, framed correctly (a newer proxy wrote it).
        var header = CheckpointCodec.header(setup: Self.setup)
        header[9 + 8 + 1] = 3
        Self.reframe(&header)
        #expect(throws: CheckpointError.newerFormat(found: 3, supported: 2)) { try CheckpointCodec.decode(header, setup: Self.setup) }
        #expect(CheckpointError.newerFormat(found: 3, supported: 2).description.contains("newer tsmp"))
        // One byte changed inside the second flow record: its checksum fails, the whole checkpoint is refused.
        let headerLength = CheckpointCodec.header(setup: Self.setup).count
        let firstLength = CheckpointCodec.record(Self.kinds[0]).count
        var damaged = good
        damaged[headerLength + firstLength + 20] ^= 0x40
        #expect(throws: CheckpointError.corrupt(offset: headerLength + firstLength, why: "checksum")) {
            try CheckpointCodec.decode(damaged, setup: Self.setup)
        }
    }

    @Test("never traps: every single-byte change and every prefix of a checkpoint is read or refused")
    func neverTraps() {
        // Held bytes trimmed: each byte of the checkpoint is changed three times.
        let kinds = Self.kinds.map { f -> FlowCheckpoint in
            var g = f
            if let h = f.held { g.held = HeldBytes(start: h.start, bytes: Array(h.bytes.prefix(100))) }
            return g
        }
        let good = CheckpointCodec.snapshot(setup: Self.setup, flows: kinds)
        var accepted = 0
        for i in good.indices {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var bytes = good
                bytes[i] ^= flip
                if let read = try? CheckpointCodec.decode(bytes, setup: Self.setup) {
                    // Only a change in a length field can shorten the last record into a "torn" one.
                    #expect(read.tornTail != nil || read.flows == kinds, "byte \(i) ^ \(flip)")
                    accepted += 1
                }
            }
        }
        #expect(accepted < 10)
        for n in 0...good.count { _ = try? CheckpointCodec.decode(Array(good.prefix(n)), setup: Self.setup) }
    }

    @Test("CRC-32C of the RFC 3720 B.4 test patterns")
    func crc32c() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map(UInt8.init)) == 0x46DD_794E)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}

private extension IPEndpoint {
    init(string: String) { self = IPEndpoint(string)! }
}

extension MigrationResumeTests {
    @Test("a restarted engine that adopts the checkpoint forwards a spliced flow byte for byte as the engine that wrote it")
    func adoptedSplicedFlowForwardsTheSame() throws {
        let h = established()
        _ = try spliced(h)
        let end = cut + 3 * 1448
        #expect(h.send(h.fromServer(at: end, ack: 120, length: 100)).verdict == .forward)
        #expect(h.engine.activeMigrationCount == 0)
        let checkpoint = CheckpointCodec.snapshot(setup: 1, flows: h.engine.checkpoints())
        let restarted = SpliceEngine(config: MigrationLab.config())
        let read = try CheckpointCodec.decode(checkpoint, setup: 1)
        #expect(restarted.adopt(read.flows, now: h.now).adopted == [h.flowID])
        #expect(restarted.natPortsInUse == 1)
        let packets = [
            h.fromServer(at: end + 100, ack: 120, length: 1000),
            h.fromPhone(at: 0, ack: end + 1100, length: 300),
            h.fromServer(at: end + 1100, ack: 420, length: 1448),
            h.fromPhone(at: 300, ack: end + 2548),
            h.fromServer([.fin, .ack], at: end + 2548, ack: 420),
        ]
        expectSameRewrites(packets, original: h.send, restarted: restarted, now: h.now)
        // Ids the restarted engine hands out follow the adopted one.
        #expect(restarted.checkpoints().map(\.id) == [h.flowID])
    }

    @Test("adoption refuses what does not fit: a taken NAT port, a device 4-tuple already here, an IPv6 flow")
    func adoptionRefusals() throws {
        let h = established()
        let mine = try #require(h.engine.checkpoints().first)
        var samePort = mine
        samePort.id = FlowID(mine.id.rawValue + 1)
        samePort.device = endpoint("10.1.0.9:1234")
        var sameTuple = mine
        sameTuple.id = FlowID(mine.id.rawValue + 2)
        sameTuple.natPort = mine.natPort + 1
        var v6 = mine
        v6.id = FlowID(mine.id.rawValue + 3)
        v6.device = IPEndpoint(.v6(IPv6Address(high: 0x2001_0db8_0000_0001, low: 2)), 40000)
        let result = h.engine.adopt([samePort, sameTuple, v6], now: h.now)
        #expect(result.adopted.isEmpty)
        #expect(result.refused.map(\.id) == [samePort.id, sameTuple.id, v6.id])
        #expect(result.refused[0].reason.contains("NAT port"))
        #expect(result.refused[1].reason.contains("already here"))
        #expect(result.refused[2].reason.contains("IPv6"))
        #expect(h.engine.flowCount == 1)
    }
}
