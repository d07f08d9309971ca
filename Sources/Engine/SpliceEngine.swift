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
    let serviceByVIP: [IPv4Endpoint: ServiceMapping]
    /// Flows chosen for the kernel path, and flows it should give back (`takeKernelPathChanges`).
    var kernelPathEntering: [KernelPathFlow] = []
    var kernelPathLeaving: [KernelPathFlow] = []
    /// Flows the kernel forwards now.
    var kernelPathIDs: Set<FlowID> = []

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
        self.natPorts = NATPortAllocator(range: shard.ownNATPorts)
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
        guard let total = HeaderPeek(p).ipv4TotalLength else { return }
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
        let verdict = classify(bytes, offload: &offload, now: now, generated: generated)
        if partial, verdict == .forward, let packet = try? TCPIPv4Packet(validating: bytes) {
            packet.refreshPartialChecksum()
        }
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
        guard let first = bytes.first else { return .drop(.truncated) }
        if first >> 4 == 6 {
            do { _ = try IPv6Packet(validating: bytes) } catch { return .drop(DropReason(error)) }
            return .drop(.ipv6Unsupported)
        }
        let packet: TCPIPv4Packet
        do { packet = try TCPIPv4Packet(validating: bytes) } catch { return .drop(DropReason(error)) }
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
        if destination.address == config.nat && config.natPorts.contains(destination.port) {
            return fromServer(packet, options: options, segmentSize: &offload.segmentSize, now: now, generated: generated)
        }
        if let service = serviceByVIP[destination] {
            return fromDevice(packet, options: options, target: service.target, serviceMode: true, now: now, generated: generated)
        }
        if config.intercepts.contains(where: { $0.contains(destination.port) }) {
            return fromDevice(packet, options: options, target: destination, serviceMode: false, now: now, generated: generated)
        }
        // Steered here but matching nothing: the kernel would have forwarded it; so do we.
        return .passThrough
    }

    // MARK: Device -> server

    private func fromDevice(_ packet: TCPIPv4Packet, options: TCPOptionScan, target: IPv4Endpoint, serviceMode: Bool,
                            now: Instant, generated: PacketBatch) -> Verdict {
        let key = DeviceSideKey(device: packet.source, original: packet.destination)
        let flags = packet.tcp.flags
        let isOpeningSyn = flags.contains(.syn) && !flags.contains(.ack) && !flags.contains(.rst)
        if let slot = table.slot(deviceKey: key) {
            let (finished, migrating) = withFlow(slot) { ($0.state == .closed || $0.state == .reset, $0.isMigrating) }
            if isOpeningSyn && finished {
                // The device reuses its port for a new connection: the old flow is over.
                removeFlow(slot: slot, closed: true)
            } else if migrating {
                return migratingFromDevice(packet, slot: slot, now: now, generated: generated)
            } else {
                forwardToServer(packet, options: options, slot: slot, now: now)
                return .forward
            }
        }
        if isOpeningSyn, let claimed = claimMigrationSyn(packet, now: now, generated: generated) { return claimed }
        if !retiredKeys.isEmpty, !isOpeningSyn, let until = retiredKeys[key] {
            // The old (or refused new) device of a migration: its sub-connection was reset by the
            // proxy; late segments must not reach the server as if unmanaged.
            if now < until { return .consumed }
            retiredKeys[key] = nil
        }
        guard isOpeningSyn && !flags.contains(.fin) else {
            if !serviceMode { return .passThrough } // a flow older than the proxy: not ours
            if !flags.contains(.rst) { sendReset(answering: packet, generated: generated) }
            return .drop(.noFlow)
        }
        if options.hasUnspliceableOption {
            // MPTCP, TCP-MD5 and TCP-AO can't be spliced (DESIGN §5): leave the flow alone.
            if !serviceMode { return .passThrough }
            sendReset(answering: packet, generated: generated)
            return .drop(.unspliceable)
        }
        guard table.count < config.limits.maxFlows else { return .drop(.flowTableFull) }
        guard let natPort = natPorts.allocate() else { return .drop(.natPortsExhausted) }
        let id = FlowID(shard.globalID(local: nextFlowID))
        nextFlowID += 1
        var flow = Flow(id: id, device: packet.source, original: packet.destination, server: target,
                        natPort: natPort, state: .synSent, created: now, lastActivity: now)
        flow.deviceSyn = SynOptions(packet.tcp.options)
        flow.streamStartToServer = packet.tcp.seq + 1
        let slot = table.insert(flow)
        counters.flowsCreated &+= 1
        journal.append(.flowNew, at: now, flow: id, device: flow.device, server: target)
        logger.debug("flow created", metadata: [
            "flow.id": "\(id)", "flow.device": "\(flow.device)", "flow.server": "\(target)",
            "flow.nat_port": "\(natPort)",
        ])
        forwardToServer(packet, options: options, slot: slot, now: now)
        return .forward
    }

    private func forwardToServer(_ packet: TCPIPv4Packet, options: TCPOptionScan, slot: Int, now: Instant) {
        let tcp = packet.tcp
        let flags = tcp.flags
        let seq = tcp.seq
        let ack = tcp.ack
        let nat = IPv4Endpoint(config.nat, 0)
        withFlow(slot) { flow in
            flow.lastActivity = now
            // The device acks in its own space; the copy and the server's FIN are in the server's.
            let ackInServerSpace = flow.toDevice.seqOffset.reverse(ack)
            observe(sender: &flow.toServer, other: &flow.toDevice, tcp: tcp, timestamp: options.timestampValue(in: tcp),
                    ackInOtherSpace: ackInServerSpace)
            if flags.contains(.ack) { flow.inFlight?.acknowledge(ackInServerSpace) }
            advanceState(&flow, flags: flags, fromDevice: true)
            if flow.kernelPath == .inKernel && (flags.contains(.fin) || flags.contains(.rst)) { kernelPathSawClose(&flow) }
            // Rewrite (NAT + sequence spaces).
            packet.setSource(IPv4Endpoint(nat.address, flow.natPort))
            packet.setDestination(flow.server)
            if !flow.toServer.seqOffset.isZero { tcp.setSeq(flow.toServer.seqOffset.apply(seq)) }
            if flags.contains(.ack) && !flow.toDevice.seqOffset.isZero {
                tcp.setAck(flow.toDevice.seqOffset.reverse(ack))
                if options.hasSACK { remapSACK(tcp, flow.toDevice.seqOffset.inverse) }
            }
            // After a migration: the new device's clock and window scale (RFC 7323 §2.3, §5.3).
            if flow.toServer.tsOffset != 0 { shiftTimestamp(tcp, valueBy: flow.toServer.tsOffset, echoBy: 0) }
            if let own = flow.deviceShiftOverride, own != flow.deviceWindowShift {
                tcp.setWindow(WindowScale(from: own, to: flow.deviceWindowShift).translate(tcp.window))
            }
        }
    }

    // MARK: Server -> device

    private func fromServer(_ packet: TCPIPv4Packet, options: TCPOptionScan, segmentSize: inout UInt16, now: Instant, generated: PacketBatch) -> Verdict {
        guard let slot = table.slot(natPort: packet.destination.port) else { return .drop(.noFlow) }
        // Read in place (withFlow): a copy of the record would cost more than the rest.
        let source = packet.source
        let (fromItsServer, migrating) = withFlow(slot) { ($0.server == source, $0.isMigrating) }
        guard fromItsServer else { return .drop(.unexpectedSource) }
        if migrating {
            return migratingFromServer(packet, slot: slot, now: now, generated: generated)
        }
        let tcp = packet.tcp
        let flags = tcp.flags
        let seq = tcp.seq
        let ack = tcp.ack
        let payloadLength = tcp.payloadLength
        let perFlowCap = config.limits.inFlightPerFlow
        let deviceMSS = withFlow(slot) { flow -> UInt16? in
            flow.lastActivity = now
            if flags.contains(.syn) && flags.contains(.ack) && flow.state == .synSent {
                flow.serverSyn = SynOptions(tcp.options)
                flow.streamStartToDevice = seq + 1
            }
            let ackInDeviceSpace = flow.toServer.seqOffset.reverse(ack)
            observe(sender: &flow.toDevice, other: &flow.toServer, tcp: tcp, timestamp: options.timestampValue(in: tcp),
                    ackInOtherSpace: ackInDeviceSpace)
            advanceState(&flow, flags: flags, fromDevice: false)
            if flow.kernelPath == .inKernel && (flags.contains(.fin) || flags.contains(.rst)) { kernelPathSawClose(&flow) }
            // Keep a copy of what goes to the device until it acknowledges it (DESIGN §5); not
            // while the kernel forwards the flow (the device's acks bypass the engine).
            if payloadLength > 0 && perFlowCap > 0 && (flow.kernelPath == .none || flow.kernelPath == .resyncing) {
                if flow.inFlight == nil {
                    flow.inFlight = InFlightCopy(start: seq, cap: perFlowCap)
                }
                let budget = max(0, config.limits.inFlightTotal - inFlightStorageBytes)
                inFlightStorageBytes += flow.inFlight!.record(seq: seq, payload: UnsafeRawBufferPointer(tcp.payload), budget: budget)
            }
            packet.setSource(flow.original)
            packet.setDestination(flow.device)
            if !flow.toDevice.seqOffset.isZero { tcp.setSeq(flow.toDevice.seqOffset.apply(seq)) }
            if flags.contains(.ack) && !flow.toServer.seqOffset.isZero {
                tcp.setAck(flow.toServer.seqOffset.reverse(ack))
                if options.hasSACK { remapSACK(tcp, flow.toServer.seqOffset.inverse) }
            }
            // After a migration: what the new device did not negotiate, and its scale and clock.
            if flow.toServer.tsOffset != 0 { shiftTimestamp(tcp, valueBy: 0, echoBy: flow.toServer.tsOffset) }
            if let shift = flow.deviceViewOfServerShift {
                tcp.setWindow(WindowScale(from: flow.serverWindowShift, to: shift).translate(tcp.window))
            }
            if flow.deviceLacksSACK && options.hasSACK { neutraliseOptions(tcp, kind: TCPOptionKind.sack) }
            if flow.deviceLacksTimestamps && options.timestampOffset >= 0 { neutraliseOptions(tcp, kind: TCPOptionKind.timestamp) }
            return flow.deviceMSS
        }
        if let mss = deviceMSS, payloadLength > Int(mss) {
            // A super-segment is cut by the kernel: ask for smaller pieces. Others are split here.
            if segmentSize > 0 {
                segmentSize = min(segmentSize, mss)
                return .forward
            }
            return splitForDevice(packet, mss: Int(mss), generated: generated)
        }
        return .forward
    }

    // MARK: Shared bookkeeping

    /// Records what a segment says about its sender's direction and the other direction's FIN.
    /// `ackInOtherSpace` is the segment's ack mapped back into the other direction's sender's
    /// sequence space (where that direction's `finSeq` is recorded).
    /// `timestamp` is the segment's TSval, if it carries the option.
    func observe(sender: inout DirectionState, other: inout DirectionState, tcp: TCPSegment, timestamp: UInt32?,
                 ackInOtherSpace: SeqNumber) {
        let flags = tcp.flags
        sender.packets &+= 1
        sender.bytes &+= UInt64(tcp.payloadLength)
        sender.lastWindow = tcp.window
        if let timestamp { sender.lastTSval = timestamp }
        let end = tcp.seq + tcp.sequenceLength
        if let n = sender.nextSeq { sender.nextSeq = SeqNumber.max(n, end) } else { sender.nextSeq = end }
        if flags.contains(.fin) { sender.finSeq = tcp.seq + UInt32(tcp.payloadLength) }
        if flags.contains(.ack) {
            let ack = ackInOtherSpace
            if let h = sender.highestAck { sender.highestAck = SeqNumber.max(h, ack) } else { sender.highestAck = ack }
            if let fin = other.finSeq, ack.greaterThan(fin) { other.finAcked = true }
        }
    }

    private func advanceState(_ flow: inout Flow, flags: TCPFlags, fromDevice: Bool) {
        if flags.contains(.rst) {
            if flow.state != .reset { flow.stateBeforeReset = flow.state }
            flow.state = .reset
            return
        }
        if flow.state == .reset, let before = flow.stateBeforeReset {
            // Traffic after a RST: its receiver ignored it (RFC 5961 §3), so the flow lives on.
            flow.state = before
            flow.stateBeforeReset = nil
        }
        switch flow.state {
        case .synSent:
            if !fromDevice && flags.contains(.syn) && flags.contains(.ack) { flow.state = .synReceived }
        case .synReceived:
            if fromDevice && flags.contains(.ack) && !flags.contains(.syn) { flow.state = .established }
        default:
            break
        }
        if flow.toServer.finSeq != nil || flow.toDevice.finSeq != nil {
            if flow.toServer.finAcked && flow.toDevice.finAcked {
                flow.state = .closed
            } else if flow.state == .established || flow.state == .synReceived {
                flow.state = .halfClosed
            }
        }
    }

    func withFlow<R>(_ slot: Int, _ body: (inout Flow) -> R) -> R {
        body(&table[slot: slot]!)
    }

    func removeFlow(slot: Int, closed: Bool) {
        guard var flow = table.remove(slot: slot) else { return }
        kernelPathForget(flow)
        natPorts.release(flow.natPort)
        if flow.inFlight != nil { inFlightStorageBytes -= flow.inFlight!.releaseStorage() }
        if closed { counters.flowsClosed &+= 1 } else { counters.flowsExpired &+= 1 }
        journal.append(.flowDestroy, at: flow.lastActivity, flow: flow.id, device: flow.device, server: flow.server,
                       detail: closed ? "closed" : "expired")
        logger.debug("flow removed", metadata: [
            "flow.id": "\(flow.id)", "flow.state": "\(flow.state.rawValue)",
            "flow.bytes_to_server": "\(flow.toServer.bytes)", "flow.bytes_to_device": "\(flow.toDevice.bytes)",
        ])
    }
}
