import Wire

/// The checkpoint's byte format (version 2): a stream of self-checking records, so the same
/// bytes serve as a file that is appended to per flow event and compacted by atomic replace,
/// and as a stream a standby gateway could follow (conntrackd's role) without a new format.
///
///     record = length u32 | crc u32 | type u8 | body        (big-endian; length and crc
///                                                           cover type + body; crc: CRC-32C)
///     type 1, header: "TSMPCKPT" | version u16 | setup u64 | shard u16 | shards u16 |
///                     shard seed u64                        (first, once)
///     type 2, flow:   id u64 | device, original, server: endpoint | NAT port u16 | state u8 |
///                     seq offsets to server, to device u32 u32 | TS offsets u32 u32 |
///                     stream starts u32 u32 | FINs: (present u8, seq u32) x2 |
///                     device SYN, server SYN: syn | server's view of the device's shift u8 |
///                     device shift override u8 | device's view of the server's shift u8
///                     (0xFF: none) | device MSS u16 (0: none) | bits u8 (1 device lacks SACK,
///                     2 lacks timestamps, 4 lacks ECN, 8 in the kernel, 16 held by a migration,
///                     32 (format 2 on) a migration waits for the flow's state)
///                     [with bit 32: migration id u64 | its target: endpoint]
///                     [with bit 16: migration id u64 | its target: endpoint |
///                      (format 2 on) the pause's ends, to device u32, to server u32 |
///                      the server's ack u32 | last TSval to the server: (present u8, u32) |
///                      the server's FIN: (present u8, seq u32) | the new device:
///                      (present u8, endpoint) | the new device sent data u8]
///     type 3, gone:   id u64
///     type 4, held:   id u64 | migration id u64 | seq u32 | bytes (1 to 32768)
///     endpoint = family u8 (4 or 6) | address (4 or 16 bytes) | port u16
///     syn      = MSS u16 (0: none) | window scale u8 (0xFF: none) | bits u8 (1 SACK, 2 TS, 4 ECN)
///
/// A later flow record replaces an earlier one of the same id; "gone" removes it. "held"
/// records carry the bytes a migration holds for a flow (its in-flight copy and cache), each
/// continuing the run before it; they are written before the proxy acknowledges those bytes
/// to the server (the data plane appends a batch's records before its packets leave), so a
/// restart has every byte the server was told it no longer needs to keep. They belong to the
/// migration they name: a flow record without it (the migration ended) drops them. `setup` is
/// a fingerprint of the proxy's options that flows depend on (NAT address, services, device
/// prefixes): a checkpoint written under other options is refused, not adopted. Each shard
/// (TUN queue) writes its own checkpoint; the header says which one, of how many, and the
/// seed of the device-side hash (`ShardLayout.seed`): a restart must route each adopted flow's
/// packets to the shard that holds its NAT port, so it takes the seed over.
///
/// Reading never traps on bad bytes. A record cut short at the end (a write the crash
/// interrupted) is reported and not applied; anything else that does not check out (CRC,
/// length, an unknown type or value, a record after a cut one) refuses the whole checkpoint.
public enum CheckpointCodec {
    public static let version: UInt16 = 2
    static let magic = Array("TSMPCKPT".utf8)
    /// The most bytes one "held" record carries.
    public static let maxHeldChunk = 32_768
    /// No record of this version is longer (a flow record of two IPv6 endpoints is ~150 bytes;
    /// a "held" record is its chunk and 21 bytes).
    static let maxRecordLength = maxHeldChunk + 64

    enum RecordType: UInt8 { case header = 1, flow = 2, gone = 3, held = 4 }

    /// Which shard wrote a checkpoint, of how many, and their device-side hash seed.
    public struct Shard: Sendable, Hashable {
        public var index: Int, count: Int, seed: UInt64
        public init(index: Int, count: Int, seed: UInt64) { self.index = index; self.count = count; self.seed = seed }
        public init(_ layout: ShardLayout) { self.init(index: layout.index, count: layout.count, seed: layout.seed) }
        /// One engine owning everything.
        public static let single = Shard(index: 0, count: 1, seed: 0)
    }

    /// The first record of every checkpoint.
    public static func header(setup: UInt64, shard: Shard = .single) -> [UInt8] {
        var w = Writer()
        w.bytes(magic); w.u16(version); w.u64(setup)
        w.u16(UInt16(clamping: shard.index)); w.u16(UInt16(clamping: shard.count)); w.u64(shard.seed)
        return frame(.header, w.out)
    }

    /// A flow's facts, replacing any earlier record of the same flow.
    public static func record(_ f: FlowCheckpoint) -> [UInt8] {
        var w = Writer()
        w.u64(f.id.rawValue)
        w.endpoint(f.device); w.endpoint(f.original); w.endpoint(f.server)
        w.u16(f.natPort)
        w.u8(stateCode(f.state))
        w.u32(f.seqOffsetToServer.delta); w.u32(f.seqOffsetToDevice.delta)
        w.u32(f.tsOffsetToServer); w.u32(f.tsOffsetToDevice)
        w.u32(f.streamStartToServer.rawValue); w.u32(f.streamStartToDevice.rawValue)
        for fin in [f.finToServer, f.finToDevice] { w.u8(fin == nil ? 0 : 1); w.u32(fin?.rawValue ?? 0) }
        w.syn(f.deviceSyn); w.syn(f.serverSyn)
        w.u8(f.serverViewOfDeviceShift)
        w.u8(f.deviceShiftOverride ?? 0xFF); w.u8(f.deviceViewOfServerShift ?? 0xFF)
        w.u16(f.deviceMSS ?? 0)
        var bits: UInt8 = 0
        if f.deviceLacksSACK { bits |= 1 }
        if f.deviceLacksTimestamps { bits |= 2 }
        if f.deviceLacksECN { bits |= 4 }
        if f.inKernel { bits |= 8 }
        let held = f.heldByMigration && f.migrationID != nil
        let awaiting = !f.heldByMigration && f.migrationID != nil
        if held { bits |= 16 }
        if awaiting { bits |= 32 }
        w.u8(bits)
        if awaiting, let mid = f.migrationID {
            w.u64(mid.rawValue)
            w.endpoint(f.migrationTarget ?? IPEndpoint(.v4(IPv4Address(0)), 0))
        }
        if held, let mid = f.migrationID {
            w.u64(mid.rawValue)
            w.endpoint(f.migrationTarget ?? IPEndpoint(.v4(IPv4Address(0)), 0))
            let z = f.freeze ?? CheckpointedFreeze(forwardedToDeviceEnd: SeqNumber(0), forwardedToServerEnd: SeqNumber(0),
                                                   serverAckServerView: SeqNumber(0))
            w.u8(f.freeze == nil ? 0 : 1)
            w.u32(z.forwardedToDeviceEnd.rawValue); w.u32(z.forwardedToServerEnd.rawValue); w.u32(z.serverAckServerView.rawValue)
            w.u8(z.lastTSvalToServer == nil ? 0 : 1); w.u32(z.lastTSvalToServer ?? 0)
            w.u8(z.serverFinSeq == nil ? 0 : 1); w.u32(z.serverFinSeq?.rawValue ?? 0)
            w.u8(z.newDevice == nil ? 0 : 1)
            if let d = z.newDevice { w.endpoint(d) }
            w.u8(z.newDeviceSentData ? 1 : 0)
        }
        return frame(.flow, w.out)
    }

    /// Bytes a migration holds for flow `id`, from `start`: as many "held" records as it takes.
    public static func held(_ id: FlowID, migration: MigrationID, start: SeqNumber, bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var at = bytes.startIndex
        while at < bytes.endIndex {
            let n = min(maxHeldChunk, bytes.endIndex - at)
            var w = Writer()
            w.u64(id.rawValue); w.u64(migration.rawValue)
            w.u32((start + UInt32(truncatingIfNeeded: at - bytes.startIndex)).rawValue)
            w.out += bytes[at..<(at + n)]
            out += frame(.held, w.out)
            at += n
        }
        return out
    }

    /// The flow is gone (closed, reset, expired): a restart must not adopt it.
    public static func gone(_ id: FlowID) -> [UInt8] {
        var w = Writer()
        w.u64(id.rawValue)
        return frame(.gone, w.out)
    }

    /// A whole checkpoint of `flows`: what compaction writes to a new file before renaming it.
    public static func snapshot(setup: UInt64, shard: Shard = .single, flows: [FlowCheckpoint]) -> [UInt8] {
        flows.reduce(into: header(setup: setup, shard: shard)) { out, f in
            out += record(f)
            if f.heldByMigration, let mid = f.migrationID, let h = f.held, !h.bytes.isEmpty {
                out += held(f.id, migration: mid, start: h.start, bytes: h.bytes[...])
            }
        }
    }

    /// What a checkpoint holds: the flows live at its end, in id order.
    public struct Contents: Sendable, Equatable {
        public var flows: [FlowCheckpoint]
        /// The shard that wrote it (its header).
        public var shard: Shard = .single
        /// A last record cut short: where it starts, and how many of its bytes are there out of
        /// how many. Not applied: its flow stays as the records before said.
        public var tornTail: TornRecord?
        public init(flows: [FlowCheckpoint], shard: Shard = .single, tornTail: TornRecord? = nil) {
            self.flows = flows; self.shard = shard; self.tornTail = tornTail
        }
    }

    public struct TornRecord: Sendable, Equatable, CustomStringConvertible {
        public var offset: Int, present: Int, expected: Int
        public var description: String {
            "the last record, at byte \(offset), is cut short (\(present) of \(expected) bytes): a write the stop interrupted; not applied"
        }
    }

    /// Reads a checkpoint written under options whose fingerprint is `setup`.
    public static func decode(_ bytes: [UInt8], setup: UInt64) throws(CheckpointError) -> Contents {
        guard !bytes.isEmpty else { throw .empty }
        var flows: [FlowID: FlowCheckpoint] = [:]
        var held: [FlowID: (MigrationID, HeldBytes)] = [:]
        var offset = 0
        var sawHeader = false
        var format = version
        var shard = Shard.single
        func contents(torn: TornRecord?) -> Contents {
            Contents(flows: sorted(flows, held: held), shard: shard, tornTail: torn)
        }
        while offset < bytes.count {
            let left = bytes.count - offset
            var head = Reader(bytes[offset..<min(bytes.count, offset + 8)])
            guard left >= 8, let length = head.u32().map(Int.init), let crc = head.u32() else {
                if !sawHeader { throw .truncated(present: bytes.count) }
                return contents(torn: TornRecord(offset: offset, present: left, expected: 8))
            }
            guard length >= 1, length <= maxRecordLength else {
                throw sawHeader ? CheckpointError.corrupt(offset: offset, why: "record length \(length)") : CheckpointError.notACheckpoint
            }
            guard left >= 8 + length else {
                if !sawHeader { throw .truncated(present: bytes.count) }
                return contents(torn: TornRecord(offset: offset, present: left, expected: 8 + length))
            }
            let record = bytes[(offset + 8)..<(offset + 8 + length)]
            guard CRC32C.checksum(record) == crc else {
                throw sawHeader ? CheckpointError.corrupt(offset: offset, why: "checksum") : CheckpointError.notACheckpoint
            }
            var r = Reader(record.dropFirst())
            let type = RecordType(rawValue: record[record.startIndex])
            if !sawHeader {
                guard type == .header, let m = r.bytes(magic.count), m == magic, let v = r.u16(), let s = r.u64() else {
                    throw .notACheckpoint
                }
                guard v <= version else { throw .newerFormat(found: v, supported: version) }
                guard s == setup else { throw .otherSetup }
                guard let index = r.u16(), let count = r.u16(), let seed = r.u64(), r.isAtEnd,
                      count >= 1, index < count else { throw .notACheckpoint }
                shard = Shard(index: Int(index), count: Int(count), seed: seed)
                format = v
                sawHeader = true
            } else {
                switch type {
                case .flow:
                    guard length <= 1024, let f = flow(&r, format: format), r.isAtEnd else {
                        throw .corrupt(offset: offset, why: "flow record")
                    }
                    flows[f.id] = f
                    if let (mid, _) = held[f.id], f.migrationID != mid || !f.heldByMigration { held[f.id] = nil }
                case .gone:
                    guard let id = r.u64(), r.isAtEnd else { throw .corrupt(offset: offset, why: "gone record") }
                    flows[FlowID(id)] = nil
                    held[FlowID(id)] = nil
                case .held:
                    guard format >= 2, let id = r.u64(), let mid = r.u64(), let seq = r.u32(),
                          let bytes = r.bytes(record.count - 21), !bytes.isEmpty else {
                        throw .corrupt(offset: offset, why: "held record")
                    }
                    let fid = FlowID(id), m = MigrationID(mid), at = SeqNumber(seq)
                    if let (was, run) = held[fid], was == m, at.greaterThanOrEqual(run.start), at.lessThanOrEqual(run.end) {
                        // Continues the run (a compaction may repeat bytes it already has).
                        let skip = Int(at.distance(to: run.end))
                        var grown = run
                        if skip < bytes.count { grown.bytes += bytes[skip...] }
                        held[fid] = (m, grown)
                    } else {
                        held[fid] = (m, HeldBytes(start: at, bytes: bytes))
                    }
                case .header, nil:
                    throw .corrupt(offset: offset, why: "record type \(record[record.startIndex])")
                }
            }
            offset += 8 + length
        }
        return contents(torn: nil)
    }

    /// The flows in id order, each held by a migration with the bytes read for that migration.
    private static func sorted(_ flows: [FlowID: FlowCheckpoint], held: [FlowID: (MigrationID, HeldBytes)]) -> [FlowCheckpoint] {
        flows.values.sorted { $0.id < $1.id }.map { f in
            guard f.heldByMigration, let (mid, run) = held[f.id], mid == f.migrationID else { return f }
            var g = f
            g.held = run
            return g
        }
    }

    private static func flow(_ r: inout Reader, format: UInt16) -> FlowCheckpoint? {
        guard let id = r.u64(), let device = r.endpoint(), let original = r.endpoint(), let server = r.endpoint(),
              let natPort = r.u16(), let stateByte = r.u8(), let state = flowState(stateByte) else { return nil }
        var f = FlowCheckpoint(id: FlowID(id), device: device, original: original, server: server,
                               natPort: natPort, state: state)
        guard let a = r.u32(), let b = r.u32(), let c = r.u32(), let d = r.u32(), let e = r.u32(), let g = r.u32()
        else { return nil }
        f.seqOffsetToServer = SequenceOffset(delta: a); f.seqOffsetToDevice = SequenceOffset(delta: b)
        f.tsOffsetToServer = c; f.tsOffsetToDevice = d
        f.streamStartToServer = SeqNumber(e); f.streamStartToDevice = SeqNumber(g)
        var fins: [SeqNumber?] = []
        for _ in 0..<2 {
            guard let present = r.u8(), present <= 1, let seq = r.u32() else { return nil }
            fins.append(present == 1 ? SeqNumber(seq) : nil)
        }
        f.finToServer = fins[0]; f.finToDevice = fins[1]
        guard let deviceSyn = r.syn(), let serverSyn = r.syn(), let view = r.u8(), view <= 14,
              let override = r.u8(), override <= 14 || override == 0xFF,
              let serverView = r.u8(), serverView <= 14 || serverView == 0xFF,
              let mss = r.u16(), let bits = r.u8(), bits & ~(format >= 2 ? 0x3F : 0x1F) == 0, bits & 0x30 != 0x30 else { return nil }
        f.deviceSyn = deviceSyn; f.serverSyn = serverSyn
        f.serverViewOfDeviceShift = view
        f.deviceShiftOverride = override == 0xFF ? nil : override
        f.deviceViewOfServerShift = serverView == 0xFF ? nil : serverView
        f.deviceMSS = mss == 0 ? nil : mss
        f.deviceLacksSACK = bits & 1 != 0; f.deviceLacksTimestamps = bits & 2 != 0
        f.deviceLacksECN = bits & 4 != 0; f.inKernel = bits & 8 != 0; f.heldByMigration = bits & 16 != 0
        if bits & 32 != 0 {
            guard let mid = r.u64(), let target = r.endpoint() else { return nil }
            f.migrationID = MigrationID(mid)
            f.migrationTarget = target
        }
        if f.heldByMigration {
            guard let mid = r.u64(), let target = r.endpoint() else { return nil }
            f.migrationID = MigrationID(mid)
            f.migrationTarget = target
            if format >= 2 {
                guard let hasFreeze = r.u8(), hasFreeze <= 1, let toDevice = r.u32(), let toServer = r.u32(), let ack = r.u32(),
                      let hasTS = r.u8(), hasTS <= 1, let ts = r.u32(), let hasFin = r.u8(), hasFin <= 1, let fin = r.u32(),
                      let hasNew = r.u8(), hasNew <= 1 else { return nil }
                var z = CheckpointedFreeze(forwardedToDeviceEnd: SeqNumber(toDevice), forwardedToServerEnd: SeqNumber(toServer),
                                           serverAckServerView: SeqNumber(ack))
                z.lastTSvalToServer = hasTS == 1 ? ts : nil
                z.serverFinSeq = hasFin == 1 ? SeqNumber(fin) : nil
                if hasNew == 1 {
                    guard let d = r.endpoint() else { return nil }
                    z.newDevice = d
                }
                guard let sent = r.u8(), sent <= 1 else { return nil }
                z.newDeviceSentData = sent == 1
                f.freeze = hasFreeze == 1 ? z : nil
            }
        }
        return f
    }

    private static func frame(_ type: RecordType, _ body: [UInt8]) -> [UInt8] {
        let record = [type.rawValue] + body
        var w = Writer()
        w.u32(UInt32(record.count)); w.u32(CRC32C.checksum(record))
        return w.out + record
    }

    private static let states: [FlowState] = [.synSent, .synReceived, .established, .halfClosed, .closed, .reset]
    private static func stateCode(_ s: FlowState) -> UInt8 { UInt8(states.firstIndex(of: s) ?? 0) }
    private static func flowState(_ code: UInt8) -> FlowState? { Int(code) < states.count ? states[Int(code)] : nil }
}

/// Why a checkpoint is refused; each says what to do.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case empty
    case notACheckpoint
    /// Shorter than its own header.
    case truncated(present: Int)
    case newerFormat(found: UInt16, supported: UInt16)
    /// Written by a proxy with other options (NAT address, services, device prefixes).
    case otherSetup
    case corrupt(offset: Int, why: String)

    public var description: String {
        switch self {
        case .empty: "the checkpoint is empty"
        case .notACheckpoint: "not a tsmp flow checkpoint (no header record)"
        case .truncated(let n): "the checkpoint is cut short: \(n) bytes, less than its header"
        case .newerFormat(let found, let supported):
            "the checkpoint is format \(found), written by a newer tsmp; this one reads up to format \(supported)"
        case .otherSetup: "the checkpoint was written by a proxy with other options (NAT address or ports, intercepted ports, services, or number of queues)"
        case .corrupt(let offset, let why): "the checkpoint is damaged at byte \(offset) (\(why))"
        }
    }
}
