import Logging
import Wire

/// The sans-IO splice engine (DESIGN §5; TSMP draft §4.2.2). It owns the flow table and
/// rewrites packets in place: addresses and ports (NAT), sequence and acknowledgement numbers,
/// SACK blocks, with IP and TCP checksums updated incrementally (RFC 1624).
///
/// It never reads a clock or does I/O: the caller passes each batch read from the gateway with
/// `now`, writes out what stays in the batch (packets not marked dropped) and what the engine
/// appended to `generated`, and calls `expire(now:)` periodically.
///
/// Invariants: every packet read is either forwarded (rewritten), passed through unchanged
/// (transparent mode, not managed) or dropped with a `DropReason` counted; the table never
/// holds more than `limits.maxFlows` flows; NAT ports are in use exactly for the flows held;
/// in-flight copies never exceed their per-flow and total caps.
public final class SpliceEngine {
    public let config: EngineConfig
    /// Which share of the flows this engine owns (one engine per TUN queue); `.single` owns all.
    public let shard: ShardLayout
    public internal(set) var counters: EngineCounters {
        get { hot.pointee.counters }
        _modify { yield &hot.pointee.counters }
    }
    let logger: Logger
    var table: FlowTable {
        _read { yield hot.pointee.table }
        _modify { yield &hot.pointee.table }
    }
    var natPorts: NATPortAllocator
    var nextFlowID: UInt64 = 1
    /// Bytes of storage held by all in-flight copies.
    public internal(set) var inFlightStorageBytes: Int {
        get { hot.pointee.inFlightStorageBytes }
        _modify { yield &hot.pointee.inFlightStorageBytes }
    }
    /// What every packet touches, in storage of its own: a stored property of a class is
    /// checked for exclusive access at run time on each use (a call into the runtime), memory
    /// behind a pointer is not. The engine is used from one thread at a time (its owner's).
    private struct HotState {
        var counters = EngineCounters()
        var table: FlowTable
        var inFlightStorageBytes = 0
    }
    private let hot: UnsafeMutablePointer<HotState>
    var sweepCursor = 0
    /// IPv4 datagrams that came in fragments, until whole (`SpliceEngine+Fragments`).
    var reassembly = IPv4Reassembly()
    /// Running migrations, from the request (waiting for a flow's state, `awaitingState`) to
    /// the end (they leave with their report).
    var migrations: [MigrationID: Migration] = [:]
    /// Spliced flows whose window update the server has not yet shown it took (`WindowReopen`).
    var windowReopens: [FlowID: WindowReopen] = [:]
    var finishedMigrations: [MigrationID: MigrationReport] = [:]
    var finishedOrder: [MigrationID] = []
    /// Flows and migrations as they happen (`tsmp events`), and what finished migrations amount to.
    var journal = EventJournal()
    public internal(set) var migrationStats = MigrationStats()
    /// Each running and recently finished migration's packets (`MigrationTimeline`).
    var timelines: [MigrationID: MigrationTimeline] = [:]
    var timelineOrder: [MigrationID] = []
    var nextMigrationID: UInt64 = 1
    /// Device-side keys a migration took a flow away from, until when their late segments
    /// are absorbed.
    var retiredKeys: [DeviceSideKey: Instant] = [:]
    /// With several shards: the new-device SYNs the data plane's arbiter gave to a migration of
    /// this engine (`assignNewDeviceSyn`); only these are claimed. At most one per migration
    /// (the arbiter stops offering a migration once it assigned it), dropped when claimed or
    /// when the migration ends.
    var newDeviceAssignments: [DeviceSideKey: MigrationID] = [:]
    /// The 4-tuples ever assigned (`assignNewDeviceSyn`), until the engine tells it released them.
    var assignedKeys: Set<DeviceSideKey> = []
    /// Migrations whose awaited SYN was announced (`EngineEvent.expectNewDeviceSyn`) and whose
    /// end of waiting was not announced yet.
    var announcedAwaiting: Set<MigrationID> = []
    /// What the engine has to tell its driver (`takeEvents`), besides the kernel path's changes.
    var events: [EngineEvent] = []
    /// Flows whose durable facts changed since the last `takeCheckpointRecords`, when the
    /// driver keeps a checkpoint (`recordsCheckpointChanges`).
    var checkpointChanges: Set<FlowID> = []
    /// Whether flow events are noted for the checkpoint (off: nobody takes them).
    public var recordsCheckpointChanges = false
    /// Adopted flows whose migration held bytes when the previous proxy stopped, and the sides
    /// already reset (`SpliceEngine+InterruptedMigration`).
    var interruptedMigrations: [FlowID: Set<InterruptedSide>] = [:]
    /// New devices of migrations a restart took back to their old devices: their
    /// sub-connections are refused for a while (`SpliceEngine+RestoredMigration`).
    var restartRefusals: [RefusedAfterRestart] = []
    /// Those `adopt` added (its result says them).
    var adoptionRefusals: [RefusedAfterRestart] = []
    let serviceByVIP: [IPEndpoint: ServiceMapping]
    /// Set while a packet is processed when its new addresses are of the other family
    /// (`setAddresses`): `process` then sends it again in that family (`translateFamily`).
    var pendingTranslation: FamilyTranslation?
    /// Flows chosen for the kernel path, and flows it should give back (`takeKernelPathChanges`).
    var kernelPathEntering: [KernelPathFlow] = []
    var kernelPathLeaving: [KernelPathFlow] = []
    /// Flows the kernel forwards now.
    var kernelPathIDs: Set<FlowID> = []
    /// Flows handed to the kernel (`EngineEvent.kernelPathEnter`) whose hand-over is not yet
    /// confirmed: the kernel may forward them already, so no migration starts on them.
    var kernelPathPending: Set<FlowID> = []
    /// Bounds the ICMP errors translated per second (`SpliceEngine+ICMP`).
    var icmpLimiter = ICMPRateLimiter()

    /// What happened to one packet.
    public enum Verdict: Equatable, Sendable {
        /// Rewritten in place; write it out.
        case forward
        /// Not managed: write it out unchanged.
        case passThrough
        case drop(DropReason)
        /// Absorbed by a migration (the proxy answers for the other side); nothing to write.
        case consumed
    }

    /// `shard`: the share of the flows this engine owns (its NAT ports, its ids); nil: all of them.
    public init(config: EngineConfig, shard: ShardLayout? = nil, logger: Logger = Logger(label: "tsmp.engine")) {
        self.config = config
        let shard = shard ?? .single(natPorts: config.natPorts)
        self.shard = shard
        self.logger = logger
        self.natPorts = NATPortAllocator(range: shard.ownNATPorts, start: config.natPortStart)
        self.serviceByVIP = Dictionary(config.services.map { ($0.vip, $0) }, uniquingKeysWith: { a, _ in a })
        self.hot = .allocate(capacity: 1)
        self.hot.initialize(to: HotState(table: FlowTable(maxFlows: min(config.limits.maxFlows, shard.ownNATPorts.count))))
    }

    deinit {
        hot.deinitialize(count: 1)
        hot.deallocate()
    }

    public var flowCount: Int { table.count }
    /// Bytes of the flow table's slab per slot (one flow record).
    public static var flowRecordBytes: Int { MemoryLayout<Flow?>.stride }
    public var natPortsInUse: Int { natPorts.inUse }

    /// Processes every packet of `batch` in place; packets not to be written are marked
    /// dropped. Packets the engine makes itself (RSTs, later migration ACKs) are appended to
    /// `generated`.
    public func process(_ batch: PacketBatch, now: Instant, generated: PacketBatch) {
        reassembleFragments(batch, now: now)
        for i in 0..<batch.count where !batch.dropped[i] {
            trimLinkPadding(batch, i)
            switch process(batch.packet(i), offload: &batch.offloads[i], now: now, generated: generated) {
            case .forward, .passThrough: break
            case .drop, .consumed: batch.markDropped(i)
            }
        }
    }

    /// Drops bytes after an IPv4 datagram's total length (Ethernet padding in captures): the raw
    /// socket would otherwise send them as part of the packet (IP_HDRINCL takes the buffer's size).
    private func trimLinkPadding(_ batch: PacketBatch, _ i: Int) {
        let p = UnsafeRawBufferPointer(batch.packet(i))
        // IPv6 payload length 0 (a jumbogram or a BIG TCP super-segment) declares no length.
        guard let total = HeaderPeek(p).declaredLength, total > IPv6Packet.headerLength || p.first.map({ $0 >> 4 }) == 4 else { return }
        if total >= IPv4Packet.minimumHeaderLength && total < p.count { batch.setLength(i, total) }
    }

    /// Processes one packet (rewritten in place when forwarded).
    @discardableResult
    public func process(_ bytes: UnsafeMutableRawBufferPointer, now: Instant, generated: PacketBatch) -> Verdict {
        var none = VirtioNetHeader()
        return process(bytes, offload: &none, now: now, generated: generated)
    }

    /// Processes one packet with its offload metadata (a TUN with IFF_VNET_HDR): a partial
    /// checksum is not verified but recomputed for the rewritten addresses; a super-segment
    /// is rewritten once, and its segment size lowered to the receiving device's MSS.
    @discardableResult
    public func process(_ bytes: UnsafeMutableRawBufferPointer, offload: inout VirtioNetHeader,
                        now: Instant, generated: PacketBatch) -> Verdict {
        counters.packetsIn &+= 1
        counters.bytesIn &+= UInt64(bytes.count)
        let partial = offload.flags & VirtioNetHeader.needsChecksum != 0
        if offload.segmentSize > 0 { counters.superSegmentsIn &+= 1 }
        pendingTranslation = nil
        var verdict = classify(bytes, offload: &offload, now: now, generated: generated)
        if verdict == .forward, let translation = pendingTranslation {
            verdict = translateFamily(bytes, translation, generated: generated)
        }
        if partial, verdict == .forward, let packet = try? TCPIPPacket(validating: bytes) {
            packet.refreshPartialChecksum()
        }
        // A forwarded packet was rewritten: DATA_VALID vouched for the bytes as they came in,
        // not for the checksum the engine updated. Not passing it on lets the receiver (a
        // local or veth peer would otherwise skip its check) judge the engine's work.
        if verdict == .forward { offload.flags &= ~VirtioNetHeader.dataValid }
        switch verdict {
        case .forward:
            counters.packetsForwarded &+= 1
            counters.bytesForwarded &+= UInt64(bytes.count)
        case .passThrough:
            counters.packetsPassedThrough &+= 1
        case .consumed:
            counters.packetsConsumed &+= 1
        case .drop(let reason):
            counters[reason] &+= 1
            logger.trace("drop", metadata: ["packet.drop_reason": "\(reason.rawValue)"])
        }
        return verdict
    }

    private func classify(_ bytes: UnsafeMutableRawBufferPointer, offload: inout VirtioNetHeader,
                          now: Instant, generated: PacketBatch) -> Verdict {
        let packet: TCPIPPacket
        do { packet = try TCPIPPacket(validating: bytes) } catch {
            // ICMP is looked for among valid IP that is not TCP only: TCP segments, nearly all
            // of what comes here, pay nothing for it.
            if case .notTCP = error {
                let peek = HeaderPeek(UnsafeRawBufferPointer(bytes))
                if peek.isICMPv4 { return icmpError(bytes, now: now, generated: generated) }
                // ICMPv6: errors about managed flows are translated; the rest (neighbour
                // discovery, echo) is the kernel's.
                if peek.ipVersion == 6, (try? IPv6Packet(validating: bytes))?.transportProtocol == IPv6HeaderChain.Next.icmpv6 {
                    return config.nat6 == nil ? .passThrough : icmpv6Error(bytes, now: now, generated: generated)
                }
            }
            return .drop(DropReason(error))
        }
        // IPv6 TCP is managed only with an IPv6 NAT address (`tsmp proxy --nat [IPv6]`).
        if packet.family == .ipv6 && config.nat6 == nil { return .drop(.ipv6Unsupported) }
        if config.verifyChecksums {
            // A partial TCP checksum is finished later by the kernel, and one the kernel already
            // verified (DATA_VALID: a NIC's or GRO's check) need not be summed again, a 64 KB
            // super-segment at a time: only the IP header's is checked then.
            let skipTCP = offload.flags & (VirtioNetHeader.needsChecksum | VirtioNetHeader.dataValid) != 0
            if let bad = skipTCP ? packet.verifyHeaderChecksumOnly() : packet.verifyChecksums() { return .drop(DropReason(bad)) }
        }
        let options = TCPOptionScan(packet.tcp)
        if options.isMalformed { return .drop(.badTCPOptions) }

        let destination = packet.destination
        if config.isNAT(destination.address) && config.natPorts.contains(destination.port) {
            return fromServer(packet, options: options, segmentSize: &offload.segmentSize, now: now, generated: generated)
        }
        // (A dictionary lookup hashes the whole endpoint: not paid without services.)
        if !serviceByVIP.isEmpty, let service = serviceByVIP[destination] {
            return fromDevice(packet, options: options, target: service.target, serviceMode: true, now: now, generated: generated)
        }
        if config.intercepts.contains(where: { $0.contains(destination.port) }) {
            return fromDevice(packet, options: options, target: destination, serviceMode: false, now: now, generated: generated)
        }
        // Steered here but matching nothing: the kernel would have forwarded it; so do we.
        return .passThrough
    }
}
