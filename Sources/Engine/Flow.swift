import Wire

/// Where a flow is in its life (RFC 9293 §3.3.2, seen from the middle).
public enum FlowState: String, Sendable, Codable {
    /// The device's SYN was forwarded; no SYN-ACK yet.
    case synSent = "syn-sent"
    /// The server answered with SYN-ACK; waiting for the device's ACK.
    case synReceived = "syn-received"
    case established
    /// One direction has sent FIN; the other may still send (half-close).
    case halfClosed = "half-closed"
    /// Both directions sent FIN and both FINs are acknowledged.
    case closed
    /// A RST was forwarded.
    case reset
}

/// The TCP options one end announced in its SYN (RFC 9293 §3.2, RFC 7323, RFC 2018).
public struct SynOptions: Sendable, Hashable, Codable {
    public var mss: UInt16?
    /// nil when the end did not offer window scaling.
    public var windowScale: UInt8?
    public var sackPermitted = false
    public var timestamps = false
    /// An ECN-setup SYN (ECE and CWR) or SYN-ACK (ECE without CWR), RFC 3168 §6.1.1.
    public var ecn = false
    public init() {}
    init(_ options: TCPOptions, flags: TCPFlags) {
        mss = options.maximumSegmentSize
        windowScale = options.windowScale.map { min($0, 14) } // RFC 7323 §2.3: cap at 14
        sackPermitted = options.sackPermitted
        timestamps = options.timestamp != nil
        ecn = flags.contains(.ece) && (flags.contains(.ack) ? !flags.contains(.cwr) : flags.contains(.cwr))
    }
}

/// One direction of a flow: what the sender of that direction has done.
///
/// Laid out small (44 bytes): the optional sequence numbers are stored as raw values with one
/// "known" bit each instead of as `Optional`s (each of which would take 8 bytes with padding).
struct DirectionState: Sendable {
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
    /// Added to this direction's sequence numbers (and subtracted from the other direction's
    /// acks); zero until a migration splices a new sub-connection.
    var seqOffset = SequenceOffset()
    /// Added to this direction's TSval (and subtracted from the other's TSecr) after a
    /// migration, so the receiver's PAWS check (RFC 7323 §5) never sees time go back.
    var tsOffset: UInt32 = 0
    private var nextSeqRaw: UInt32 = 0
    private var finSeqRaw: UInt32 = 0
    private var highestAckRaw: UInt32 = 0
    private var lastTSvalRaw: UInt32 = 0
    /// The sender's last window field (unscaled), for segments the proxy makes on its behalf
    /// during a migration.
    var lastWindow: UInt16 = 0
    /// The other side acknowledged this direction's FIN.
    var finAcked = false
    private var known: UInt8 = 0

    /// Forgets what was seen of sequence numbers, acks and timestamps (the FIN stays): the
    /// kernel forwarded segments the engine did not see, so these are stale (and may be more
    /// than 2^31 behind, where comparisons stop meaning anything). The next segments teach them again.
    mutating func forgetSequenceState() {
        known &= Known.finSeq
    }

    /// Whether segments since `forgetSequenceState` taught the sequence state again.
    var knowsSequenceState: Bool { known & (Known.nextSeq | Known.highestAck) == Known.nextSeq | Known.highestAck }

    /// The next sequence number and TSval as last seen, known or not: after
    /// `forgetSequenceState` they are stale, a starting point for the state probes' guesses
    /// (`SpliceEngine+StateProbes`) and nothing else.
    var lastSeenNextSeq: SeqNumber { SeqNumber(nextSeqRaw) }
    var lastSeenTSval: UInt32 { lastTSvalRaw }

    /// While the next sequence number is not known: moves its last-seen value on by `payload`
    /// bytes the kernel forwarded meanwhile (an estimate from its counters).
    mutating func estimateForwarded(payload: UInt32) {
        guard nextSeq == nil else { return }
        nextSeqRaw &+= payload
    }

    private enum Known {
        static let nextSeq: UInt8 = 1, finSeq: UInt8 = 2, highestAck: UInt8 = 4, lastTSval: UInt8 = 8
    }

    private func get(_ bit: UInt8, _ raw: UInt32) -> UInt32? { known & bit != 0 ? raw : nil }
    /// The raw value to store and the new known bits.
    private func set(_ bit: UInt8, _ value: UInt32?) -> (UInt32, UInt8) {
        if let value { (value, known | bit) } else { (0, known & ~bit) }
    }

    /// The sender's next sequence number as far as seen (highest seq + length).
    var nextSeq: SeqNumber? {
        get { get(Known.nextSeq, nextSeqRaw).map(SeqNumber.init) }
        set { (nextSeqRaw, known) = set(Known.nextSeq, newValue?.rawValue) }
    }
    /// Sequence number of the sender's FIN, once seen.
    var finSeq: SeqNumber? {
        get { get(Known.finSeq, finSeqRaw).map(SeqNumber.init) }
        set { (finSeqRaw, known) = set(Known.finSeq, newValue?.rawValue) }
    }
    /// Highest ack the sender has sent (of the other direction), in the other direction's
    /// original space (offset removed).
    var highestAck: SeqNumber? {
        get { get(Known.highestAck, highestAckRaw).map(SeqNumber.init) }
        set { (highestAckRaw, known) = set(Known.highestAck, newValue?.rawValue) }
    }
    /// The sender's last TSval (RFC 7323), for segments the proxy makes on its behalf.
    var lastTSval: UInt32? {
        get { get(Known.lastTSval, lastTSvalRaw) }
        set { (lastTSvalRaw, known) = set(Known.lastTSval, newValue) }
    }
}

/// What only some flows need, kept out of the flow table's slab so its records stay small
/// (DESIGN §5): the copy of bytes in flight toward the device (flows that carried data), and
/// a migration's state (flows migrating). A flow without either holds no `ColdFlowState`.
final class ColdFlowState {
    var inFlight: InFlightCopy?
    /// The migration under way, if any.
    var migration: MigrationID?
    /// The new device's key while a migration is under way.
    var aliasKey: DeviceSideKey?
    /// The kernel's counters when last read, while the kernel forwards the flow.
    var kernelCounters: KernelPathCounters?
    /// Path MTUs learned from ICMP (`SpliceEngine+ICMP`).
    var pathMTU: LearnedPathMTU?

    var isEmpty: Bool { inFlight == nil && migration == nil && aliasKey == nil && kernelCounters == nil && pathMTU == nil }
}

/// Options of the connection with the server that the current device did not negotiate.
struct DeviceLacks: OptionSet, Sendable {
    let rawValue: UInt8
    static let sack = DeviceLacks(rawValue: 1)
    static let timestamps = DeviceLacks(rawValue: 2)
    static let ecn = DeviceLacks(rawValue: 4)
}

/// A managed flow: a device-side and a server-side sub-connection glued together (TSMP draft
/// §4.2.2). `toServer` describes what the device sends, `toDevice` what the server sends.
///
/// The record is what the flow table's slab holds per flow (240 bytes): hot fields inline,
/// fields ordered so no padding is wasted, rarely used state out of line in `cold`.
struct Flow {
    let id: FlowID
    var created: Instant
    var lastActivity: Instant
    var toServer = DirectionState()
    // One-byte fields here fill what would be padding before `toDevice` (44 bytes, aligned on 8).
    /// The DSCP (the TOS byte's upper six bits) last seen from each end: the proxy's own
    /// segments in that direction carry it too (RFC 2474), with ECN bits Not-ECT.
    var dscpToServer: UInt8 = 0
    var dscpToDevice: UInt8 = 0
    /// The TTLs of `deviceIP` and `serverIP`.
    private var deviceTTL: UInt8 = 64
    private var serverTTL: UInt8 = 64
    var toDevice = DirectionState()
    /// The in-flight copy and migration state, allocated when first needed.
    private var cold: ColdFlowState?
    // An endpoint takes 20 bytes (an IPv6 address, its family, the port) aligned on 8: each
    // one is followed by a 4-byte field, which fills what would be padding.
    /// The device's endpoint.
    var device: IPEndpoint
    /// The IPv6 flow label of the server-side sub-connection (RFC 6437): the device's, from
    /// its SYN, kept when another device continues the flow (ECMP paths hash on it).
    /// `flowLabelUnknown` after a restart until the device's next segment shows it.
    var serverFlowLabel: UInt32 = 0
    /// Above the 20 bits a label has.
    static let flowLabelUnknown: UInt32 = .max
    /// The destination the device believes it talks to (server in transparent mode, VIP in
    /// service mode).
    var original: IPEndpoint
    /// First sequence number of each stream (after the SYN), in the receiver's view: stream
    /// offsets (cut points) are measured from these.
    var streamStartToServer = SeqNumber(0)
    /// The real server endpoint.
    var server: IPEndpoint
    var streamStartToDevice = SeqNumber(0)
    /// The port of the NAT address for the server-side sub-connection.
    var natPort: UInt16
    var deviceSyn = SynOptions()
    var serverSyn = SynOptions()
    var state: FlowState
    /// State before a RST: restored if traffic shows the RST was ignored by its receiver.
    var stateBeforeReset: FlowState?
    /// The window shift the server applies to the device side's windows (fixed by the
    /// original handshake), and the device's own shift: they differ after a migration.
    var serverViewOfDeviceShift: UInt8 = 0
    var deviceShiftOverride: UInt8?
    /// The window shift the current device applies to the server's windows, when it differs.
    var deviceViewOfServerShift: UInt8?
    /// The current device's MSS when it is smaller than segments the server may send.
    var deviceMSS: UInt16?
    /// What the connection with the server uses and the current device did not negotiate
    /// (one byte for the three: the record's size is a budget).
    private var deviceLacks = DeviceLacks()
    /// SACK / timestamps: their options are removed toward the device.
    var deviceLacksSACK: Bool {
        get { deviceLacks.contains(.sack) }
        set { if newValue { deviceLacks.insert(.sack) } else { deviceLacks.remove(.sack) } }
    }
    var deviceLacksTimestamps: Bool {
        get { deviceLacks.contains(.timestamps) }
        set { if newValue { deviceLacks.insert(.timestamps) } else { deviceLacks.remove(.timestamps) } }
    }
    /// ECN (RFC 3168): the device's packets lose their ECN codepoint (a CE mark it would
    /// never echo).
    var deviceLacksECN: Bool {
        get { deviceLacks.contains(.ecn) }
        set { if newValue { deviceLacks.insert(.ecn) } else { deviceLacks.remove(.ecn) } }
    }
    /// Whether the kernel forwards this flow instead of the engine (`SpliceEngine+KernelPath`).
    var kernelPath = KernelPathState.none
    /// TTL and DF of the current device's and of the server's packets (`EndIPHeader`), kept
    /// as the TTL bytes above (in padding) and two bits here: the record's size is a budget.
    private var dontFragmentBits: UInt8 = 0b11
    var deviceIP: EndIPHeader {
        get { EndIPHeader(ttl: deviceTTL, dontFragment: dontFragmentBits & 1 != 0) }
        set { deviceTTL = newValue.ttl; dontFragmentBits = (dontFragmentBits & ~1) | (newValue.dontFragment ? 1 : 0) }
    }
    var serverIP: EndIPHeader {
        get { EndIPHeader(ttl: serverTTL, dontFragment: dontFragmentBits & 2 != 0) }
        set { serverTTL = newValue.ttl; dontFragmentBits = (dontFragmentBits & ~2) | (newValue.dontFragment ? 2 : 0) }
    }
    /// `migration != nil` and `aliasKey != nil`, known without reaching `cold`.
    private(set) var isMigrating = false
    private(set) var hasAlias = false

    init(id: FlowID, device: IPEndpoint, original: IPEndpoint, server: IPEndpoint, natPort: UInt16,
         state: FlowState, created: Instant, lastActivity: Instant) {
        self.id = id
        self.device = device
        self.original = original
        self.server = server
        self.natPort = natPort
        self.state = state
        self.created = created
        self.lastActivity = lastActivity
    }

    /// The copy of the server's bytes in flight toward the device (DESIGN §5).
    var inFlight: InFlightCopy? {
        get { cold?.inFlight }
        _modify {
            if let cold {
                yield &cold.inFlight
                if cold.isEmpty { self.cold = nil }
            } else {
                var value: InFlightCopy?
                yield &value
                if value != nil { coldState().inFlight = value }
            }
        }
    }
    /// Acknowledges the in-flight copy up to `ack` (in the server's space), if the flow has one.
    /// Called for every ACK from the device: it mutates the copy where it lives, in the cold
    /// state, instead of through `inFlight`'s accessor, whose coroutine frame is allocated on
    /// the heap at each call, also for the flows without a copy.
    mutating func acknowledgeInFlight(_ ack: SeqNumber) {
        cold?.inFlight?.acknowledge(ack)
    }

    /// Records a server segment's payload in the in-flight copy, which starts at `seq` (with
    /// `cap`, its size limit) when the flow has none yet; returns the change in storage bytes
    /// (`InFlightCopy.record`). Called for every server segment with payload: in place, like
    /// `acknowledgeInFlight`.
    mutating func recordInFlight(seq: SeqNumber, payload: UnsafeRawBufferPointer, cap: Int, budget: Int) -> Int {
        let cold = coldState()
        if cold.inFlight == nil { cold.inFlight = InFlightCopy(start: seq, cap: cap) }
        return cold.inFlight?.record(seq: seq, payload: payload, budget: budget) ?? 0
    }

    /// The migration under way, if any.
    var migration: MigrationID? {
        get { isMigrating ? cold?.migration : nil }
        set {
            isMigrating = newValue != nil
            if newValue != nil { coldState().migration = newValue } else if let cold { cold.migration = nil; trimCold() }
        }
    }
    /// The new device's key while a migration is under way.
    var aliasKey: DeviceSideKey? {
        get { hasAlias ? cold?.aliasKey : nil }
        set {
            hasAlias = newValue != nil
            if newValue != nil { coldState().aliasKey = newValue } else if let cold { cold.aliasKey = nil; trimCold() }
        }
    }

    /// The kernel's counters when last read (flows the kernel forwards).
    var kernelCounters: KernelPathCounters? {
        get { cold?.kernelCounters }
        set {
            if newValue != nil { coldState().kernelCounters = newValue } else if let cold { cold.kernelCounters = nil; trimCold() }
        }
    }

    /// Path MTUs learned from ICMP "fragmentation needed" (RFC 1191), when any.
    var pathMTU: LearnedPathMTU? {
        get { cold?.pathMTU }
        set {
            if newValue != nil { coldState().pathMTU = newValue } else if let cold { cold.pathMTU = nil; trimCold() }
        }
    }

    private mutating func coldState() -> ColdFlowState {
        if let cold { return cold }
        let fresh = ColdFlowState()
        cold = fresh
        return fresh
    }
    private mutating func trimCold() {
        if cold?.isEmpty == true { cold = nil }
    }

    /// Window scale shift the device applies to its own window field (0 unless both offered).
    /// Whether the flow is a plain NAT of one TCP connection: nothing a migration changed
    /// (offsets, scales, options) that only the engine can apply.
    var isPlainNAT: Bool {
        toServer.seqOffset.isZero && toDevice.seqOffset.isZero && toServer.tsOffset == 0 && toDevice.tsOffset == 0
            && deviceShiftOverride == nil && deviceViewOfServerShift == nil && deviceMSS == nil
            && !deviceLacksSACK && !deviceLacksTimestamps && original == server
    }

    var deviceWindowShift: UInt8 { (deviceSyn.windowScale != nil && serverSyn.windowScale != nil) ? deviceSyn.windowScale! : 0 }
    var serverWindowShift: UInt8 { (deviceSyn.windowScale != nil && serverSyn.windowScale != nil) ? serverSyn.windowScale! : 0 }
}

/// What `tsmp flows` shows of a flow: a copy, safe to hand to another thread.
public struct FlowSummary: Sendable, Codable, Equatable {
    public var id: FlowID
    public var device: IPEndpoint
    public var original: IPEndpoint
    public var nat: IPEndpoint
    public var server: IPEndpoint
    public var state: FlowState
    public var packetsToServer: UInt64
    public var bytesToServer: UInt64
    public var packetsToDevice: UInt64
    public var bytesToDevice: UInt64
    public var inFlightBytes: Int
    public var ageSeconds: Double
    public var idleSeconds: Double
    /// The migration under way and its phase, if any.
    public var migration: MigrationID?
    public var migrationPhase: MigrationPhase?
    /// The kernel forwards the flow (its counters come from the kernel's, headers included).
    public var inKernel: Bool?

    public init(id: FlowID, device: IPEndpoint, original: IPEndpoint, nat: IPEndpoint, server: IPEndpoint,
                state: FlowState, packetsToServer: UInt64, bytesToServer: UInt64, packetsToDevice: UInt64,
                bytesToDevice: UInt64, inFlightBytes: Int, ageSeconds: Double, idleSeconds: Double,
                migration: MigrationID?, migrationPhase: MigrationPhase?, inKernel: Bool? = nil) {
        self.id = id; self.device = device; self.original = original; self.nat = nat; self.server = server
        self.state = state; self.packetsToServer = packetsToServer; self.bytesToServer = bytesToServer
        self.packetsToDevice = packetsToDevice; self.bytesToDevice = bytesToDevice; self.inFlightBytes = inFlightBytes
        self.ageSeconds = ageSeconds; self.idleSeconds = idleSeconds; self.migration = migration
        self.migrationPhase = migrationPhase
        self.inKernel = inKernel
    }
}
