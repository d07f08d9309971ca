import Wire

/// GRO-style coalescing (what Linux's `tcp_gro_receive` does, in user space): consecutive
/// in-order TCP/IPv4 segments of one flow in a batch are merged into one super-segment with a
/// virtio-net header (GSO TCPv4, partial checksum), so one TUN write carries what took many,
/// and the kernel cuts it back at the same boundaries on its way out.
///
/// A segment B joins the super-segment A of the same 4-tuple only when, as in Linux:
/// - B starts where A ends (`B.seq == A.seq + A.payload`), both carry payload;
/// - ack, window, TCP header length and option bytes (timestamps included) are identical, and
///   so are the IP header's TOS (an ECN CE mark never merges), TTL, DF and header length (no
///   IP options);
/// - neither carries SYN, RST, FIN, URG or CWR; B may carry PSH, which ends the super-segment
///   (nothing joins after a PSH);
/// - B's payload is not longer than A's first segment (the segment size); a shorter B ends
///   the super-segment;
/// - neither is a super-segment already, and the result fits 65,535 bytes and the batch slot.
/// Packets of other flows in between don't stop a merge (order only matters within a flow);
/// any packet of the same flow that can't join replaces the open super-segment.
///
/// Only packets read (direction `.inbound`: forwarded by the engine) are merged, as GRO merges
/// what was received; packets made in user space (`.outbound`: the proxy's own segments) are
/// written as they were made.
///
/// A merged packet gets a correct IP header checksum and a partial TCP checksum (the pseudo-
/// header sum, NEEDS_CSUM) for the kernel to finish. Packets merged into another are marked
/// dropped (not written); the engine's counters already counted them.
///
/// The TUN device does this on its own writes (STYLE.md: offload work lives in the device).
public enum SegmentCoalescer {
    /// Open super-segments followed at once (flows interleaved in a batch).
    static let openLimit = 16

    private struct Open {
        var index: Int
        var source: UInt32, destination: UInt32, ports: UInt32
        /// Sequence number the next segment must start at.
        var nextSeq: UInt32
        /// Payload length of the first segment: the super-segment's segment size.
        var segmentSize: Int
        var segments: Int
        var closed: Bool
    }

    /// Merges what can be merged in `batch[range]`. Returns how many packets were merged away.
    @discardableResult
    public static func coalesce(_ batch: PacketBatch, _ range: Range<Int>? = nil) -> Int {
        let range = range ?? 0..<batch.count
        var open: [Open] = []
        open.reserveCapacity(openLimit)
        var merged = 0
        for i in range where !batch.dropped[i] && batch.directions[i] == .inbound {
            guard batch.offloads[i].segmentSize == 0, let packet = try? TCPIPv4Packet(validating: batch.packet(i)) else { continue }
            let ip = packet.ip, tcp = packet.tcp
            guard ip.headerLength == IPv4Packet.minimumHeaderLength, tcp.payloadLength > 0,
                  tcp.flags.isDisjoint(with: [.syn, .rst, .fin, .urg, .cwr]) else {
                close(&open, packet)
                continue
            }
            let source = ip.source.value, destination = ip.destination.value
            let ports = UInt32(tcp.sourcePort) << 16 | UInt32(tcp.destinationPort)
            let k = open.firstIndex { $0.source == source && $0.destination == destination && $0.ports == ports }
            if let k, !open[k].closed, canJoin(packet, batch, open[k]) {
                if append(packet, into: open[k], batch) {
                    merged += 1
                    batch.markDropped(i)
                    open[k].segments += 1
                    open[k].nextSeq = tcp.seq.rawValue &+ UInt32(tcp.payloadLength)
                    open[k].closed = tcp.payloadLength < open[k].segmentSize || tcp.flags.contains(.psh)
                    continue
                }
            }
            let fresh = Open(index: i, source: source, destination: destination, ports: ports,
                             nextSeq: tcp.seq.rawValue &+ UInt32(tcp.payloadLength), segmentSize: tcp.payloadLength,
                             segments: 1, closed: tcp.flags.contains(.psh))
            if let k { open[k] = fresh } else if open.count < openLimit { open.append(fresh) } else {
                open.removeFirst()
                open.append(fresh)
            }
        }
        return merged
    }

    /// A packet of an open super-segment's flow that can't join it ends it.
    private static func close(_ open: inout [Open], _ packet: TCPIPv4Packet) {
        let source = packet.ip.source.value, destination = packet.ip.destination.value
        let ports = UInt32(packet.tcp.sourcePort) << 16 | UInt32(packet.tcp.destinationPort)
        open.removeAll { $0.source == source && $0.destination == destination && $0.ports == ports }
    }

    private static func canJoin(_ b: TCPIPv4Packet, _ batch: PacketBatch, _ open: Open) -> Bool {
        guard let a = try? TCPIPv4Packet(validating: batch.packet(open.index)) else { return false }
        let ta = a.tcp, tb = b.tcp
        guard tb.seq.rawValue == open.nextSeq, tb.payloadLength <= open.segmentSize,
              ta.ack == tb.ack, ta.window == tb.window, ta.headerLength == tb.headerLength,
              ta.flags.subtracting(.psh) == tb.flags.subtracting(.psh),
              a.ip.tos == b.ip.tos, a.ip.ttl == b.ip.ttl, a.ip.dontFragment == b.ip.dontFragment,
              a.ip.totalLength + tb.payloadLength <= 65_535,
              ta.optionBytes.elementsEqual(tb.optionBytes) else { return false }
        return true
    }

    /// Appends `b`'s payload to the super-segment and fixes its headers. False (nothing
    /// changed) when the slot has no room.
    private static func append(_ b: TCPIPv4Packet, into open: Open, _ batch: PacketBatch) -> Bool {
        let payload = UnsafeRawBufferPointer(b.tcp.payload)
        guard batch.extend(open.index, with: payload) else { return false }
        // The super-segment's views are taken again: its length changed.
        let bytes = batch.packet(open.index)
        guard let ip = try? IPv4Packet(validating: bytes) else { return false }
        ip.setTotalLength(bytes.count)
        guard let a = try? TCPIPv4Packet(validating: bytes) else { return false }
        // PSH goes on the super-segment; the kernel keeps it for its last piece (as GRO does).
        if b.tcp.flags.contains(.psh) { a.tcp.setFlags(a.tcp.flags.union(.psh)) }
        a.refreshPartialChecksum()
        let headers = ip.headerLength + a.tcp.headerLength
        batch.offloads[open.index] = VirtioNetHeader(
            flags: VirtioNetHeader.needsChecksum, segmentationType: VirtioNetHeader.SegmentationType.tcpV4.rawValue,
            headerLength: UInt16(headers), segmentSize: UInt16(open.segmentSize),
            checksumStart: UInt16(ip.headerLength), checksumOffset: 16)
        return true
    }
}
