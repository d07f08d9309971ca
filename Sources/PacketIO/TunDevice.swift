import Wire
#if canImport(Glibc)
import Glibc
#endif
import CShims

/// A TUN device (layer 3, no packet-info prefix, non-blocking) as a batched `PacketDevice`:
/// `read` loops `read(2)` until EAGAIN or the batch is full, `write` writes one packet per
/// `write(2)`. This is where managed packets enter and (optionally) leave user space.
///
/// Invariants:
/// - `fileDescriptor` is open from `init` until `close()`; after `close()` reads give 0 and
///   writes throw EBADF. A non-persistent TUN disappears when its last descriptor closes.
/// - With `Options.virtioNetHeader`, every packet read has its 10-byte `virtio_net_hdr` in the
///   batch's headroom right in front of it (see `virtioNetHeader(of:_:)`); `write` puts each
///   packet's own offload metadata there, after merging the segments of a flow it can merge
///   (GRO, `SegmentCoalescer`). The batch's headroom must be >= 10.
/// - Nothing is allocated per packet; timestamps of packets read are left at zero (the loop
///   that calls `read` owns the clock and passes `now` to the engine).
public final class TunDevice: PacketDevice, WriteErrorCounting, SegmentCoalescing {
    public struct Options: Sendable, Equatable {
        /// IFF_MULTI_QUEUE: open one `TunDevice` per queue with the same name.
        public var multiQueue: Bool
        /// IFF_VNET_HDR: packets carry a virtio-net header (needed for TUNSETOFFLOAD).
        public var virtioNetHeader: Bool
        public init(multiQueue: Bool = false, virtioNetHeader: Bool = false) {
            self.multiQueue = multiQueue
            self.virtioNetHeader = virtioNetHeader
        }
    }

    /// The kernel's name for the device (differs from the requested one if it held `%d`).
    public let name: String
    public let options: Options
    public private(set) var fileDescriptor: Int32
    /// Packets the kernel refused on write (EINVAL for a non-IP packet, EIO while down...).
    public private(set) var writeErrors = ErrnoCounts()
    /// Packets read that did not fit a batch slot and were cut by the kernel (raise the
    /// batch's `maxPacket`); dropped.
    public private(set) var oversizedReads = 0
    /// Segments merged into another before a write (GRO, with `Options.virtioNetHeader`): writes saved.
    public private(set) var segmentsCoalesced: UInt64 = 0

    private var prefix: Int { options.virtioNetHeader ? VirtioNetHeader.size : 0 }

    /// Opens TUN `name`, creating it if it does not exist (needs CAP_NET_ADMIN).
    public init(name: String, options: Options = Options()) throws(SystemError) {
        var flags: Int32 = 0
        if options.multiQueue { flags |= TSMP_TUN_MULTI_QUEUE }
        if options.virtioNetHeader { flags |= TSMP_TUN_VNET_HDR }
        let opened = try Syscall.tunOpen(name: name, flags: flags)
        self.fileDescriptor = opened.fd
        self.name = opened.name
        self.options = options
        if options.virtioNetHeader {
            do {
                try Syscall.tunSetVnetHeaderSize(opened.fd, Int32(VirtioNetHeader.size))
            } catch {
                try? Syscall.close(opened.fd)
                throw error
            }
        }
    }

    deinit {
        if fileDescriptor >= 0 { try? Syscall.close(fileDescriptor) }
    }

    public func close() throws(SystemError) {
        guard fileDescriptor >= 0 else { return }
        let fd = fileDescriptor
        fileDescriptor = -1
        try Syscall.close(fd)
    }

    /// TUNSETOFFLOAD: which offloaded packets we accept. Needs `Options.virtioNetHeader`:
    /// the kernel would accept it without, then hand over super-segments and partial
    /// checksums with nothing saying so, so that is refused here with EINVAL.
    public func setOffload(_ offloads: TunOffloads) throws(SystemError) {
        guard options.virtioNetHeader || offloads.isEmpty else {
            throw SystemError("TUNSETOFFLOAD without IFF_VNET_HDR", errno: EINVAL)
        }
        try Syscall.tunSetOffload(fileDescriptor, flags: offloads.rawValue)
    }

    public var pollDescriptor: Int32? { fileDescriptor >= 0 ? fileDescriptor : nil }
    public var isExhausted: Bool { false }

    public func read(into batch: PacketBatch) throws(SystemError) -> Int {
        guard fileDescriptor >= 0 else { return 0 }
        let prefix = self.prefix
        let first = batch.count
        while !batch.isFull {
            let buffer = batch.slotBuffer(batch.count, prefix: prefix)
            guard case .done(let n) = try Syscall.read(fileDescriptor, into: buffer) else { break }
            // A TUN never reports end of file; a read shorter than the header is nothing.
            guard n > prefix else { break }
            // The kernel silently cuts a packet longer than the buffer and returns the buffer's
            // size: a full slot whose IP header declares more is such a cut packet.
            if n == buffer.count && Self.declaredLength(buffer[prefix...]) > n - prefix {
                oversizedReads += 1
                continue
            }
            batch.commitNext(length: n - prefix)
            if prefix > 0 {
                batch.offloads[batch.count - 1] = VirtioNetHeader(UnsafeRawBufferPointer(rebasing: buffer[0..<prefix]))
            }
        }
        return batch.count - first
    }

    /// Writes each packet of `range` not marked dropped. Returns how many were consumed
    /// (written, dropped, or refused and counted in `writeErrors`); fewer than `range.count`
    /// only when the device would block.
    public func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int {
        let prefix = self.prefix
        if prefix > 0 { segmentsCoalesced &+= UInt64(SegmentCoalescer.coalesce(batch, range)) }
        for i in range where !batch.dropped[i] {
            let bytes = batch.packet(i, prefix: prefix)
            if prefix > 0 {
                // The packet's own offload metadata (kept from its read, or none for packets
                // made in user space): the kernel finishes the checksum and cuts the segment.
                batch.offloads[i].encode(into: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<prefix]))
            }
            do {
                if case .wouldBlock = try Syscall.write(fileDescriptor, UnsafeRawBufferPointer(bytes)) {
                    return i - range.lowerBound
                }
            } catch {
                if ErrnoCounts.meansDeviceBroken(error.errno) { throw error }
                writeErrors.record(error.errno)
            }
        }
        return range.count
    }

    /// The length an IP packet's header declares (IPv4 total length, IPv6 40 + payload
    /// length), 0 when it does not say.
    static func declaredLength(_ packet: Slice<UnsafeMutableRawBufferPointer>) -> Int {
        HeaderPeek(UnsafeRawBufferPointer(rebasing: packet)).declaredLength ?? 0
    }

    /// The virtio-net header the kernel put in front of packet `i` (read with
    /// `Options.virtioNetHeader`).
    public func virtioNetHeader(of batch: PacketBatch, _ i: Int) -> VirtioNetHeader {
        precondition(options.virtioNetHeader, "TUN opened without IFF_VNET_HDR")
        return VirtioNetHeader(UnsafeRawBufferPointer(batch.packet(i, prefix: VirtioNetHeader.size)))
    }
}

/// TUNSETOFFLOAD flags (TUN_F_*): which offloaded packets user space accepts from the kernel.
public struct TunOffloads: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Packets with partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM).
    public static let checksum = TunOffloads(rawValue: UInt32(TSMP_TUN_F_CSUM))
    /// IPv4 TCP super-segments (GSO_TCPV4).
    public static let tcp4Segmentation = TunOffloads(rawValue: UInt32(TSMP_TUN_F_TSO4))
    /// IPv6 TCP super-segments (GSO_TCPV6).
    public static let tcp6Segmentation = TunOffloads(rawValue: UInt32(TSMP_TUN_F_TSO6))
    /// ... with ECN/CWR.
    public static let tcpSegmentationECN = TunOffloads(rawValue: UInt32(TSMP_TUN_F_TSO_ECN))
}
