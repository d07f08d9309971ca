import Logging
import Wire

/// ICMP errors about managed flows (RFC 5508 §4, the NAT behaviour for ICMP, applied to a
/// splice). A router or host that cannot deliver a segment the proxy sent answers the segment's
/// source: the NAT address for segments toward the server, the server's (or the VIP's) address
/// for segments toward a device. Neither end would ever see the error, so a narrower link
/// behind the gateway black-holes the flow: the ends never learn the path MTU (RFC 1191) and
/// a connect() to a closed port waits for its SYN timeout instead of failing at once.
///
/// The engine passes each such error to the end that sent the quoted bytes, as that end
/// knows them (RFC 5508 §4.2): outer destination that end's address, the quoted header's
/// addresses and ports its own, the quoted sequence number mapped back through the flow's
/// offsets (Linux drops errors whose quoted sequence number is outside SND.UNA..SND.NXT, RFC
/// 5927 §4.1), the next-hop MTU adjusted for the other side's header size (none for IPv4 on
/// both sides), checksums redone. Errors about the proxy's own segments during a migration
/// (the emulated sender's) are taken by the proxy: its sender lowers its segment size.
///
/// Validation (RFC 5508 §4.1, RFC 5927 §4): the checksum must be right, a quote naming a NAT
/// port must match a live flow and whose sequence number is inside what was
/// sent and not yet acknowledged; otherwise the error is dropped with its reason. ICMP about
/// anything else passes through untouched (a device's ping, an error about the gateway's own
/// connection from its NAT address). At most
/// `ICMPRateLimiter`'s rate is translated. Errors never refresh a flow's idle timer (RFC 5508
/// §4.3: only the flow's own packets keep it alive).
extension SpliceEngine {
    func icmpError(_ bytes: UnsafeMutableRawBufferPointer, now: Instant, generated: PacketBatch) -> Verdict {
        let message: ICMPv4Message
        do { message = try ICMPv4Message(validating: bytes) } catch {
            if case .outer(let e) = error { return .drop(DropReason(e)) }
            return .drop(.icmpMalformed)
        }
        // Queries (echo...), errors not about TCP and errors about TCP connections the proxy
        // does not manage are not the proxy's: passed on as the kernel would have handled them
        // (delivered to the gateway's own stack when the NAT address is one of its addresses,
        // which answers its pings and learns the path MTU of its own connections).
        guard let kind = message.kind, let quote = try? message.quotedTCP() else { return .passThrough }

        let quotedSource = quote.source
        if quotedSource.address == config.nat && config.natPorts.contains(quotedSource.port) {
            // About a segment the proxy sent a server.
            guard let slot = table.slot(natPort: quotedSource.port), table[slot: slot]?.server == IPEndpoint(quote.destination) else {
                return .drop(.icmpNoFlow)
            }
            if let bad = icmpChecksumProblem(message) { return .drop(bad) }
            return aboutSegmentToServer(message, quote, kind: kind, slot: slot, now: now)
        }
        let key = DeviceSideKey(device: IPEndpoint(quote.destination), original: IPEndpoint(quotedSource))
        guard let slot = table.slot(deviceKey: key) else { return .passThrough }
        if let bad = icmpChecksumProblem(message) { return .drop(bad) }
        return aboutSegmentToDevice(message, quote, kind: kind, slot: slot, now: now, generated: generated)
    }

    private func icmpChecksumProblem(_ message: ICMPv4Message) -> DropReason? {
        guard config.verifyChecksums else { return nil }
        if !message.ip.verifyHeaderChecksum { return .badIPChecksum }
        if !message.verifyChecksum { return .badICMPChecksum }
        return nil
    }

    // MARK: About a segment toward the server: to the device that sent it

    private func aboutSegmentToServer(_ message: ICMPv4Message, _ quote: QuotedTCPv4, kind: ICMPv4ErrorKind, slot: Int,
                                      now: Instant) -> Verdict {
        guard let flow = table[slot: slot] else { return .drop(.icmpNoFlow) }
        let sender = quotedSender(of: flow)
        // An ICMPv4 error is about an IPv4 flow on both sides (a flow keeps its family).
        guard let device4 = sender.device.ipv4, let original4 = flow.original.ipv4, let server4 = flow.server.ipv4 else {
            return .drop(.icmpNoFlow)
        }
        let deviceSeq = sender.seqOffset.reverse(quote.seq)
        if let refused = admitErrorAboutSegmentToServer(flow, deviceSeq: deviceSeq, now: now) { return .drop(refused) }
        if let mtu = message.nextHopMTU {
            learnPathMTU(slot: slot, towardServer: true, reported: mtu, quotedLength: quote.originalTotalLength, family: .ipv4)
            message.setNextHopMTU(LearnedPathMTU.translate(mtu, from: .ipv4, to: .ipv4))
        }
        quote.setSeq(deviceSeq)
        if let ackOffset = sender.ackOffset, let ack = quote.ack, quote.flags?.contains(.ack) == true { quote.setAck(ackOffset.apply(ack)) }
        quote.setSource(device4)
        quote.setDestination(original4)
        // The server itself answering (port unreachable) in service mode speaks as the VIP.
        if message.ip.source == server4.address && original4.address != server4.address {
            message.ip.setSource(original4.address)
        }
        message.ip.setDestination(device4.address)
        message.fillChecksum()
        counters.icmpErrorsTranslated &+= 1
        logger.debug("icmp error translated toward the device", metadata: [
            "flow.id": "\(flow.id)", "icmp.kind": "\(kind)", "icmp.from": "\(message.ip.source)",
            "flow.path_mtu_to_server": "\(table[slot: slot]?.pathMTU?.towardServer.map(String.init) ?? "-")",
        ])
        return .forward
    }

    // MARK: About a segment toward a device: to the server, or the proxy's own sender

    private func aboutSegmentToDevice(_ message: ICMPv4Message, _ quote: QuotedTCPv4, kind: ICMPv4ErrorKind, slot: Int,
                                      now: Instant, generated: PacketBatch) -> Verdict {
        guard let flow = table[slot: slot], let server4 = flow.server.ipv4 else { return .drop(.icmpNoFlow) }
        if let mtu = message.nextHopMTU {
            learnPathMTU(slot: slot, towardServer: false, reported: mtu, quotedLength: quote.originalTotalLength, family: .ipv4)
        }
        if let mid = flow.migration {
            // The quote is one of the proxy's own segments (its ACKs, the emulated sender's
            // data): the server never sent those bytes and would find them outside its window.
            guard icmpLimiter.allow(now: now) else { return .drop(.icmpRateLimited) }
            senderPathMTUChanged(slot: slot, mid: mid, device: IPEndpoint(quote.destination), now: now, generated: generated)
            counters.icmpErrorsAbsorbed &+= 1
            return .consumed
        }
        let serverSeq = flow.toDevice.seqOffset.reverse(quote.seq)
        if let refused = admitErrorAboutSegmentToDevice(flow, serverSeq: serverSeq, now: now) { return .drop(refused) }
        if let mtu = message.nextHopMTU { message.setNextHopMTU(LearnedPathMTU.translate(mtu, from: .ipv4, to: .ipv4)) }
        quote.setSeq(serverSeq)
        if let ack = quote.ack, quote.flags?.contains(.ack) == true { quote.setAck(flow.toServer.seqOffset.apply(ack)) }
        quote.setSource(server4)
        quote.setDestination(IPv4Endpoint(config.nat, flow.natPort))
        // RFC 5508 §4.2: an error from the private side leaves with the NAT's address as its
        // source, whoever sent it (the device or a router before it).
        message.ip.setSource(config.nat)
        message.ip.setDestination(server4.address)
        message.fillChecksum()
        counters.icmpErrorsTranslated &+= 1
        logger.debug("icmp error translated toward the server", metadata: [
            "flow.id": "\(flow.id)", "icmp.kind": "\(kind)",
        ])
        return .forward
    }

    /// The emulated sender toward `device` learns the smaller path MTU and sends again what
    /// was in flight at the new size (RFC 1191 §6.4).
    func senderPathMTUChanged(slot: Int, mid: MigrationID, device: IPEndpoint, now: Instant, generated: PacketBatch) {
        guard let f = table[slot: slot], let mtu = f.pathMTU?.towardDevice, let m = migrations[mid], var sender = m.sender else { return }
        let timestamps: Bool
        switch m.phase {
        case .resuming(let freeze, _, _):
            guard let h = freeze.newDevice, h.endpoint == device else { return }
            timestamps = f.deviceSyn.timestamps && f.serverSyn.timestamps && h.syn.timestamps
        case .rollingBack(let freeze, _, _):
            guard freeze.oldDevice == device else { return }
            timestamps = f.currentDeviceTimestamps
        default:
            return
        }
        let size = LearnedPathMTU.segmentPayload(mtu: mtu, family: device.family,
                                                 optionBytes: timestamps ? TCPOption.alignedTimestampLength : 0)
        guard size < sender.mss else { return }
        sender.pathMTUReduced(segmentSize: size)
        migrations[mid]?.setSender(sender)
        logger.info("migration path mtu lowered", metadata: ["migration.id": "\(mid)", "migration.segment_size": "\(size)"])
        transmitNew(slot: slot, mid: mid, now: now, generated: generated)
    }

    // MARK: Shared by ICMPv4 and ICMPv6

    /// The device whose bytes a quoted segment toward the server holds, and the offsets that
    /// map the quote back into its space: the new device once it sends through the proxy
    /// (`resuming`), the old one before.
    func quotedSender(of flow: Flow) -> (device: IPEndpoint, seqOffset: SequenceOffset, ackOffset: SequenceOffset?) {
        if let mid = flow.migration, case .resuming(let freeze, _, _)? = migrations[mid]?.phase, let h = freeze.newDevice {
            return (h.endpoint, h.toServerOffset, nil)
        }
        return (flow.device, flow.toServer.seqOffset, flow.toDevice.seqOffset)
    }

    /// Why an error about a segment toward the server is not passed on, or nil. RFC 5927 §4.1:
    /// the quote must be inside SND.UNA..SND.NXT of the device's stream, as far as the engine
    /// saw it (not checked while the kernel forwards the flow or a migration remaps it); and
    /// the rate limit.
    func admitErrorAboutSegmentToServer(_ flow: Flow, deviceSeq: SeqNumber, now: Instant) -> DropReason? {
        if flow.kernelPath == .none && !flow.isMigrating,
           !Self.within(deviceSeq, from: flow.toDevice.highestAck, to: flow.toServer.nextSeq) {
            return .icmpOutOfWindow
        }
        return icmpLimiter.allow(now: now) ? nil : .icmpRateLimited
    }

    /// The same for an error about a segment toward the device (the server's stream).
    func admitErrorAboutSegmentToDevice(_ flow: Flow, serverSeq: SeqNumber, now: Instant) -> DropReason? {
        if flow.kernelPath == .none,
           !Self.within(serverSeq, from: flow.toServer.highestAck, to: flow.toDevice.nextSeq) {
            return .icmpOutOfWindow
        }
        return icmpLimiter.allow(now: now) ? nil : .icmpRateLimited
    }

    /// The flow learns a path MTU from an error (RFC 1191, RFC 8201) toward the server or the device.
    func learnPathMTU(slot: Int, towardServer: Bool, reported: UInt16, quotedLength: Int, family: IPFamily) {
        withFlow(slot) { f in
            var learned = f.pathMTU ?? LearnedPathMTU()
            if towardServer {
                learned.towardServer = LearnedPathMTU.lowered(learned.towardServer, reported: reported,
                                                              quotedLength: quotedLength, family: family)
            } else {
                learned.towardDevice = LearnedPathMTU.lowered(learned.towardDevice, reported: reported,
                                                              quotedLength: quotedLength, family: family)
            }
            f.pathMTU = learned
        }
    }

    /// `seq` lies in `[una, nxt]` (inclusive, as Linux's `between`), where known.
    static func within(_ seq: SeqNumber, from una: SeqNumber?, to nxt: SeqNumber?) -> Bool {
        if let una, seq.lessThan(una) { return false }
        if let nxt, seq.greaterThan(nxt) { return false }
        return true
    }
}

extension Flow {
    /// Payload bytes per segment toward the device when segments from the server must be
    /// split: the new device's MSS after a migration, and the path MTU toward the device once
    /// ICMP taught it (RFC 1191). Nil: no limit beyond the server's own.
    /// Both limits allow for `serverOptionAllowance` option bytes; a segment carrying more
    /// (SACK blocks) gets less payload: `segmentLimitTowardDevice(optionBytes:)`.
    ///
    /// Read for every server segment: always inlined, as a call would first copy the whole
    /// 240-byte record to pass it (and the copy's stores then stall the loads that follow).
    @inline(__always)
    var segmentLimitTowardDevice: UInt16? {
        guard let mtu = pathMTU?.towardDevice else { return deviceMSS }
        return Self.segmentLimit(deviceMSS: deviceMSS, pathMTU: mtu, optionBytes: serverOptionAllowance, family: device.family)
    }

    /// `segmentLimitTowardDevice` once a path MTU toward the device is known, for segments
    /// with `optionBytes` bytes of options.
    static func segmentLimit(deviceMSS: UInt16?, pathMTU: Int, optionBytes: Int, family: IPFamily = .ipv4) -> UInt16 {
        let limit = UInt16(clamping: LearnedPathMTU.segmentPayload(mtu: pathMTU, family: family, optionBytes: optionBytes))
        return min(deviceMSS ?? limit, limit)
    }

    /// The payload limit toward the device for a server segment with `optionBytes` bytes of
    /// options (RFC 9293 §3.7.1: options come off the MSS), never below 64 bytes.
    @inline(__always)
    func segmentLimitTowardDevice(optionBytes: Int) -> Int? {
        segmentLimitTowardDevice.map { max(Int($0) - max(0, optionBytes - serverOptionAllowance), 64) }
    }

    /// The option bytes every segment of the server carries: the timestamp option when the
    /// original handshake negotiated it (for a device without timestamps it is neutralised
    /// to NOPs, which take the same room).
    var serverOptionAllowance: Int { deviceSyn.timestamps && serverSyn.timestamps ? TCPOption.alignedTimestampLength : 0 }

    /// The proxy's segment size toward the device holding the flow (a rollback's sender),
    /// within the path MTU learned toward it.
    var segmentSizeTowardDeviceOnPath: Int {
        let size = segmentSizeTowardDevice
        guard let mtu = pathMTU?.towardDevice else { return size }
        let options = currentDeviceTimestamps ? TCPOption.alignedTimestampLength : 0
        return min(size, LearnedPathMTU.segmentPayload(mtu: mtu, family: device.family, optionBytes: options))
    }

    /// The MSS the proxy's SYN-ACK offers a migration's new device: the server's, within the
    /// path MTU learned toward the server (the new device's segments go there).
    var mssOfferedToNewDevice: UInt16 {
        let mss = serverSyn.mss ?? 536
        guard let mtu = pathMTU?.towardServer else { return mss }
        let limit = max(mtu, LearnedPathMTU.floor) - server.family.headerLength - TCPSegment.minimumHeaderLength
        return min(mss, UInt16(clamping: limit))
    }
}
