import Wire
import Logging

/// The engine's per-packet work for a flow that is not migrating (DESIGN §5): a device's
/// segment (a new flow on its opening SYN) rewritten toward the server, and a server's segment
/// rewritten toward the device, with the in-flight copy kept of what the device has not
/// acknowledged. `classify` (SpliceEngine.swift) chooses the direction; a migrating flow's
/// packets go to `SpliceEngine+MigrationPackets` instead.
extension SpliceEngine {
    // MARK: Device -> server

    func fromDevice(_ packet: TCPIPPacket, options: TCPOptionScan, target: IPEndpoint, serviceMode: Bool,
                            now: Instant, generated: PacketBatch) -> Verdict {
        let key = DeviceSideKey(device: packet.source, original: packet.destination)
        let flags = packet.tcp.flags
        let isOpeningSyn = flags.contains(.syn) && !flags.contains(.ack) && !flags.contains(.rst)
        if let slot = table.slot(deviceKey: key) {
            let (finished, migrating, id) = withFlow(slot) { ($0.state == .closed || $0.state == .reset, $0.isMigrating, $0.id) }
            if !interruptedMigrations.isEmpty, interruptedMigrations[id] != nil {
                return resetInterrupted(packet, slot: slot, side: .device, now: now, generated: generated)
            }
            if isOpeningSyn && finished {
                // The device reuses its port for a new connection: the old flow is over.
                removeFlow(slot: slot, closed: true)
            } else if migrating {
                return migratingFromDevice(packet, slot: slot, now: now, generated: generated)
            } else {
                var resetAccepted = true
                if flags.contains(.rst) {
                    switch withFlow(slot, { checkReset($0, seq: packet.tcp.seq, fromDevice: true) }) {
                    case .outOfWindow: return .drop(.resetOutOfWindow)
                    case .challenged: resetAccepted = false // the server answers it with a challenge ACK
                    case .accepted: break
                    }
                }
                return forwardToServer(packet, options: options, slot: slot, resetAccepted: resetAccepted, now: now,
                                       generated: generated)
            }
        }
        if !restartRefusals.isEmpty, let refused = refuseAfterRestart(packet, now: now, generated: generated) { return refused }
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
        flow.deviceSyn = SynOptions(packet.tcp.options, flags: packet.tcp.flags)
        flow.deviceIP = EndIPHeader(packet)
        flow.serverFlowLabel = packet.flowLabel
        flow.streamStartToServer = packet.tcp.seq + 1
        clampSynTowardServer(packet)
        let slot = table.insert(flow)
        noteCheckpointChange(id)
        counters.flowsCreated &+= 1
        journal.append(.flowNew, at: now, flow: id, device: flow.device, server: target)
        logger.debug("flow created", metadata: [
            "flow.id": "\(id)", "flow.device": "\(flow.device)", "flow.server": "\(target)",
            "flow.nat_port": "\(natPort)",
        ])
        return forwardToServer(packet, options: options, slot: slot, now: now, generated: generated)
    }

    /// `resetAccepted`: false for a RST the server will only challenge (RFC 5961 §3.2): the
    /// flow does not end with it. `.forward`, or `.consumed` when the segment went out rebuilt
    /// with a timestamp option the device does not send (`addTimestampTowardServer`).
    func forwardToServer(_ packet: TCPIPPacket, options: TCPOptionScan, slot: Int, resetAccepted: Bool = true, now: Instant,
                         generated: PacketBatch) -> Verdict {
        let tcp = packet.tcp
        let flags = resetAccepted ? tcp.flags : tcp.flags.subtracting(.rst)
        let seq = tcp.seq
        let ack = tcp.ack
        var synthesized: (UInt32, UInt32, Int)?
        withFlow(slot) { flow in
            flow.lastActivity = now
            // The device acks in its own space; the copy and the server's FIN are in the server's.
            let ackInServerSpace = flow.toDevice.seqOffset.reverse(ack)
            observe(sender: &flow.toServer, other: &flow.toDevice, tcp: tcp, timestamp: options.timestampValue(in: tcp),
                    ackInOtherSpace: ackInServerSpace)
            if flags.contains(.ack) { flow.acknowledgeInFlight(ackInServerSpace) }
            advanceState(&flow, flags: flags, fromDevice: true)
            flow.dscpToServer = packet.tos & 0xFC
            if flow.kernelPath == .inKernel && (flags.contains(.fin) || flags.contains(.rst)) { kernelPathSawClose(&flow) }
            // Rewrite (NAT + sequence spaces).
            setAddresses(packet, source: natEndpoint(flow), destination: flow.server, mss: Int(flow.serverSyn.mss ?? 536))
            if case .v6(let p) = packet {
                if flow.serverFlowLabel == Flow.flowLabelUnknown { flow.serverFlowLabel = p.ip.flowLabel }
                if p.ip.flowLabel != flow.serverFlowLabel { p.ip.setFlowLabel(flow.serverFlowLabel) }
            }
            if !flow.toServer.seqOffset.isZero { tcp.setSeq(flow.toServer.seqOffset.apply(seq)) }
            if flags.contains(.ack) && !flow.toDevice.seqOffset.isZero {
                tcp.setAck(flow.toDevice.seqOffset.reverse(ack))
                if options.hasSACK { remapSACK(tcp, flow.toDevice.seqOffset.inverse) }
            }
            // After a migration: the new device's clock and window scale (RFC 7323 §2.3, §5.3).
            if flow.toServer.tsOffset != 0 && !flow.deviceLacksTimestamps {
                shiftTimestamp(tcp, valueBy: flow.toServer.tsOffset, echoBy: 0)
            }
            if let own = flow.deviceShiftOverride, own != flow.deviceWindowShift {
                tcp.setWindow(WindowScale(from: own, to: flow.deviceWindowShift).translate(tcp.window))
            }
            if flow.deviceLacksTimestamps && !flags.contains(.rst) {
                let clock = Self.synthesizedClock(now)
                flow.toServer.lastTSval = clock
                synthesized = (clock &+ flow.toServer.tsOffset, flow.toDevice.lastTSval ?? 0, Int(flow.mssOfferedToNewDevice))
            }
        }
        guard let (value, echo, mss) = synthesized else { return .forward }
        return addTimestampTowardServer(packet, value: value, echo: echo, serverMSS: mss, generated: generated)
    }

    // MARK: Server -> device

    func fromServer(_ packet: TCPIPPacket, options: TCPOptionScan, segmentSize: inout UInt16, now: Instant, generated: PacketBatch) -> Verdict {
        guard let slot = table.slot(natPort: packet.destination.port) else { return .drop(.noFlow) }
        // Read in place (withFlow): a copy of the record would cost more than the rest.
        let source = packet.source
        let (fromItsServer, migrating, id) = withFlow(slot) { ($0.server == source, $0.isMigrating, $0.id) }
        guard fromItsServer else { return .drop(.unexpectedSource) }
        if !interruptedMigrations.isEmpty, interruptedMigrations[id] != nil {
            return resetInterrupted(packet, slot: slot, side: .server, now: now, generated: generated)
        }
        if migrating {
            return migratingFromServer(packet, slot: slot, now: now, generated: generated)
        }
        let tcp = packet.tcp
        var flags = tcp.flags
        if flags.contains(.rst) {
            switch withFlow(slot, { checkReset($0, seq: tcp.seq, fromDevice: false) }) {
            case .outOfWindow: return .drop(.resetOutOfWindow)
            case .challenged: flags.remove(.rst) // the device answers it with a challenge ACK
            case .accepted: break
            }
        }
        let seq = tcp.seq
        let ack = tcp.ack
        let payloadLength = tcp.payloadLength
        let perFlowCap = config.limits.inFlightPerFlow
        if flags.contains(.syn) && flags.contains(.ack) { clampSynTowardDevice(packet) }
        let deviceMSS = withFlow(slot) { flow -> Int? in
            flow.lastActivity = now
            if flags.contains(.syn) && flags.contains(.ack) && flow.state == .synSent {
                flow.serverSyn = SynOptions(tcp.options, flags: flags)
                flow.serverIP = EndIPHeader(packet)
                flow.streamStartToDevice = seq + 1
            }
            let ackInDeviceSpace = flow.toServer.seqOffset.reverse(ack)
            observe(sender: &flow.toDevice, other: &flow.toServer, tcp: tcp, timestamp: options.timestampValue(in: tcp),
                    ackInOtherSpace: ackInDeviceSpace)
            advanceState(&flow, flags: flags, fromDevice: false)
            let tos = packet.tos
            flow.dscpToDevice = tos & 0xFC
            if flow.deviceLacksECN && tos & 0x03 != 0 { packet.setTOS(tos & 0xFC) }
            if flow.kernelPath == .inKernel && (flags.contains(.fin) || flags.contains(.rst)) { kernelPathSawClose(&flow) }
            // Keep a copy of what goes to the device until it acknowledges it (DESIGN §5); not
            // while the kernel forwards the flow (the device's acks bypass the engine).
            if payloadLength > 0 && perFlowCap > 0 && (flow.kernelPath == .none || flow.kernelPath == .resyncing) {
                let budget = max(0, config.limits.inFlightTotal - inFlightStorageBytes)
                inFlightStorageBytes += flow.recordInFlight(seq: seq, payload: UnsafeRawBufferPointer(tcp.payload),
                                                            cap: perFlowCap, budget: budget)
            }
            setAddresses(packet, source: flow.original, destination: flow.device,
                         mss: Int(flow.segmentLimitTowardDevice ?? flow.deviceSyn.mss ?? 536))
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
            return flow.segmentLimitTowardDevice(optionBytes: tcp.headerLength - TCPSegment.minimumHeaderLength)
        }
        // Toward a device of the other family: `process` sends it in pieces of the device's size.
        if pendingTranslation != nil { return .forward }
        if let mss = deviceMSS, payloadLength > mss {
            // A super-segment is cut by the kernel: ask for smaller pieces. Others are split here.
            if segmentSize > 0 {
                segmentSize = min(segmentSize, UInt16(clamping: mss))
                return .forward
            }
            return splitForDevice(packet, mss: mss, generated: generated)
        }
        return .forward
    }
}
