import Logging
import Wire

/// ICMPv6 errors about managed IPv6 flows (RFC 4443 §3; the splice's counterpart of RFC 5508
/// §4, as `SpliceEngine+ICMP` does for ICMPv4). IPv6 routers never fragment (RFC 8200 §5): a
/// narrower link answers with "packet too big" to the segment's source, and path MTU discovery
/// (RFC 8201) is the only way through. That source is the NAT address for segments toward the
/// server and the server's (or the VIP's) for segments toward a device, so without translation
/// neither end would learn its path MTU and a narrower link black-holes the flow.
///
/// Each error goes to the end that sent the quoted bytes, as that end knows them: outer
/// destination that end's address, the quoted addresses, ports and sequence numbers its own,
/// the checksum over the new pseudo-header (RFC 4443 §2.3). Errors about the proxy's own
/// segments during a migration are taken by the proxy (its emulated sender lowers its segment
/// size). Validation as for ICMPv4: the checksum right, a quote naming a NAT port matches a
/// live flow and lies inside what was sent and not yet acknowledged; rate limited; never a
/// refresh of the flow's idle timer. ICMPv6 that is not an error about a managed flow
/// (neighbour discovery, echo, errors about the gateway's own connections) is the kernel's.
extension SpliceEngine {
    func icmpv6Error(_ bytes: UnsafeMutableRawBufferPointer, now: Instant, generated: PacketBatch) -> Verdict {
        let message: ICMPv6Message
        do { message = try ICMPv6Message(validating: bytes) } catch {
            if case .outer(let e) = error { return .drop(DropReason(e)) }
            return .drop(.icmpMalformed)
        }
        guard let kind = message.kind, let quote = try? message.quotedTCP() else { return .passThrough }
        let quotedSource = quote.source
        if config.nat6 == quotedSource.address && config.natPorts.contains(quotedSource.port) {
            // About a segment the proxy sent a server.
            guard let slot = table.slot(natPort: quotedSource.port), table[slot: slot]?.server == IPEndpoint(quote.destination) else {
                return .drop(.icmpNoFlow)
            }
            if config.verifyChecksums && !message.verifyChecksum { return .drop(.badICMPChecksum) }
            return aboutSegmentToServer(message, quote, kind: kind, slot: slot, now: now)
        }
        let key = DeviceSideKey(device: IPEndpoint(quote.destination), original: IPEndpoint(quotedSource))
        guard let slot = table.slot(deviceKey: key) else { return .passThrough }
        if config.verifyChecksums && !message.verifyChecksum { return .drop(.badICMPChecksum) }
        return aboutSegmentToDevice(message, quote, kind: kind, slot: slot, now: now, generated: generated)
    }

    // MARK: About a segment toward the server: to the device that sent it

    private func aboutSegmentToServer(_ message: ICMPv6Message, _ quote: QuotedTCPv6, kind: ICMPv6ErrorKind, slot: Int,
                                      now: Instant) -> Verdict {
        guard let flow = table[slot: slot] else { return .drop(.icmpNoFlow) }
        let sender = quotedSender(of: flow)
        // A flow keeps its family on both sides (a migration to the other family is refused).
        guard let device6 = sender.device.ipv6, let original6 = flow.original.ipv6, let server6 = flow.server.ipv6 else {
            return .drop(.icmpNoFlow)
        }
        let deviceSeq = sender.seqOffset.reverse(quote.seq)
        if let refused = admitErrorAboutSegmentToServer(flow, deviceSeq: deviceSeq, now: now) { return .drop(refused) }
        if let mtu = message.mtu {
            learnPathMTU(slot: slot, towardServer: true, reported: UInt16(clamping: mtu),
                         quotedLength: IPv6Packet.headerLength + quote.originalPayloadLength, family: .ipv6)
        }
        quote.setSeq(deviceSeq)
        if let ackOffset = sender.ackOffset, let ack = quote.ack, quote.flags?.contains(.ack) == true { quote.setAck(ackOffset.apply(ack)) }
        quote.setSource(device6)
        quote.setDestination(original6)
        // The server itself answering (port unreachable) in service mode speaks as the VIP.
        if message.ip.source == server6.address && original6.address != server6.address {
            message.ip.setSource(original6.address)
        }
        message.ip.setDestination(device6.address)
        message.fillChecksum()
        counters.icmpErrorsTranslated &+= 1
        logger.debug("icmpv6 error translated toward the device", metadata: [
            "flow.id": "\(flow.id)", "icmp.kind": "\(kind)", "icmp.from": "\(message.ip.source)",
        ])
        return .forward
    }

    // MARK: About a segment toward a device: to the server, or the proxy's own sender

    private func aboutSegmentToDevice(_ message: ICMPv6Message, _ quote: QuotedTCPv6, kind: ICMPv6ErrorKind, slot: Int,
                                      now: Instant, generated: PacketBatch) -> Verdict {
        guard let flow = table[slot: slot], let server6 = flow.server.ipv6, let nat6 = config.nat6 else {
            return .drop(.icmpNoFlow)
        }
        if let mtu = message.mtu {
            learnPathMTU(slot: slot, towardServer: false, reported: UInt16(clamping: mtu),
                         quotedLength: IPv6Packet.headerLength + quote.originalPayloadLength, family: .ipv6)
        }
        if let mid = flow.migration {
            guard icmpLimiter.allow(now: now) else { return .drop(.icmpRateLimited) }
            senderPathMTUChanged(slot: slot, mid: mid, device: IPEndpoint(quote.destination), now: now, generated: generated)
            counters.icmpErrorsAbsorbed &+= 1
            return .consumed
        }
        let serverSeq = flow.toDevice.seqOffset.reverse(quote.seq)
        if let refused = admitErrorAboutSegmentToDevice(flow, serverSeq: serverSeq, now: now) { return .drop(refused) }
        quote.setSeq(serverSeq)
        if let ack = quote.ack, quote.flags?.contains(.ack) == true { quote.setAck(flow.toServer.seqOffset.apply(ack)) }
        quote.setSource(server6)
        quote.setDestination(IPv6Endpoint(nat6, flow.natPort))
        message.ip.setSource(nat6)
        message.ip.setDestination(server6.address)
        message.fillChecksum()
        counters.icmpErrorsTranslated &+= 1
        logger.debug("icmpv6 error translated toward the server", metadata: ["flow.id": "\(flow.id)", "icmp.kind": "\(kind)"])
        return .forward
    }
}
