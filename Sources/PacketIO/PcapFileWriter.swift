import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Writes packets to a pcap file (classic format, nanosecond timestamps, little-endian) as a
/// `PacketDevice`: the sink of `tsmp proxy --capture` (through the data plane's `CaptureRecorder`) and of
/// `tsmp replay --out`. With the default link type LINUX_SLL each record keeps its
/// direction: inbound (read by the engine) is packet type 0 "to us", outbound (written by
/// the engine) is 4 "outgoing"; the protocol is 0x0800 / 0x86DD by IP version. LINKTYPE_RAW
/// keeps only the IP packets.
///
/// Invariants:
/// - Records go to one buffer allocated in `init`; it is written out when full, on
///   `flush()` and on `close()`, so recording a packet allocates nothing and usually makes
///   no syscall. `deinit` closes (and flushes) if `close()` was not called.
/// - A packet longer than `snapLength` is cut to it (caplen < len, like tcpdump -s).
/// - Errors (disk full, ...) throw `SystemError` naming the call; not thread-safe.
public final class PcapFileWriter: PacketDevice {
    public enum LinkType: Sendable, Equatable {
        /// LINKTYPE_LINUX_SLL (113): a 16-byte cooked header with the direction.
        case linuxSLL
        /// LINKTYPE_RAW (101): the bare IP packet.
        case raw

        var pcapLinkType: PcapLinkType { self == .raw ? .raw : .linuxSLL }
        var headerLength: Int { self == .raw ? 0 : 16 }
    }

    public let path: String
    public let linkType: LinkType
    public let snapLength: Int
    public private(set) var packetsWritten = 0

    private var fileDescriptor: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0

    private static let recordHeaderLength = 16
    /// ARPHRD_NONE: a device without link-layer header, what a TUN is.
    private static let hardwareTypeNone: UInt16 = 0xFFFE

    /// Creates (or truncates) `path` and writes the file header.
    public init(path: String, linkType: LinkType = .linuxSLL, snapLength: Int = 262_144,
                bufferBytes: Int = 1 << 20) throws(SystemError) {
        precondition(snapLength >= 64 && bufferBytes >= 64)
        self.path = path
        self.linkType = linkType
        self.snapLength = snapLength
        self.fileDescriptor = try Syscall.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        self.buffer = .allocate(byteCount: bufferBytes, alignment: 8)
        put32(0xA1B2_3C4D)              // magic: nanosecond timestamps
        put16(2); put16(4)              // version 2.4
        put32(0); put32(0)              // thiszone, sigfigs
        put32(UInt32(clamping: snapLength))
        put32(linkType.pcapLinkType.fileValue)
    }

    deinit {
        if fileDescriptor >= 0 { try? close() }
        buffer.deallocate()
    }

    /// Writes out what is buffered.
    public func flush() throws(SystemError) {
        guard used > 0, fileDescriptor >= 0 else { return }
        let pending = UnsafeRawBufferPointer(rebasing: buffer[0..<used])
        used = 0
        try Syscall.writeAll(fileDescriptor, pending)
    }

    /// Flushes and closes the file. Later records are ignored.
    public func close() throws(SystemError) {
        guard fileDescriptor >= 0 else { return }
        defer {
            try? Syscall.close(fileDescriptor)
            fileDescriptor = -1
        }
        try flush()
    }

    /// Records one packet with an explicit time and direction.
    public func record(_ packet: UnsafeRawBufferPointer, at time: Instant,
                       direction: PacketDirection) throws(SystemError) {
        guard fileDescriptor >= 0 else { return }
        let linkHeader = linkType.headerLength
        let captured = min(packet.count, snapLength - linkHeader)
        let recordLength = Self.recordHeaderLength + linkHeader + captured
        if used + recordLength > buffer.count { try flush() }

        put32(UInt32(clamping: time.nanoseconds / 1_000_000_000))
        put32(UInt32(time.nanoseconds % 1_000_000_000))
        put32(UInt32(linkHeader + captured))
        put32(UInt32(clamping: linkHeader + packet.count))
        if linkType == .linuxSLL {
            putBE16(UInt16(direction.rawValue))   // packet type: 0 host, 4 outgoing
            putBE16(Self.hardwareTypeNone)
            putBE16(0)                            // link-layer address length
            put32(0); put32(0)                    // link-layer address (none)
            let version = packet.count > 0 ? packet[0] >> 4 : 0
            putBE16(version == 4 ? 0x0800 : version == 6 ? 0x86DD : 0)
        }
        let bytes = UnsafeRawBufferPointer(rebasing: packet[0..<captured])
        if used + captured <= buffer.count {
            if captured > 0 {
                (buffer.baseAddress! + used).copyMemory(from: bytes.baseAddress!, byteCount: captured)
            }
            used += captured
        } else {
            // Larger than the whole buffer: write the headers, then the packet directly.
            try flush()
            try Syscall.writeAll(fileDescriptor, bytes)
        }
        packetsWritten += 1
    }

    /// Records one packet given as an array (tests, tools).
    public func record(_ packet: [UInt8], at time: Instant, direction: PacketDirection) throws(SystemError) {
        // Array.withUnsafeBytes is `rethrows` (untyped): carry the typed error out in a Result.
        let result: Result<Void, SystemError> = packet.withUnsafeBytes { raw in
            Result { () throws(SystemError) in try record(raw, at: time, direction: direction) }
        }
        try result.get()
    }

    /// Records packets `range` of `batch` (not marked dropped) with the given direction and,
    /// when `time` is nil, each packet's own timestamp.
    public func record(_ batch: PacketBatch, _ range: Range<Int>, direction: PacketDirection,
                       at time: Instant? = nil) throws(SystemError) {
        for i in range where !batch.dropped[i] {
            try record(UnsafeRawBufferPointer(batch.packet(i)), at: time ?? batch.timestamps[i],
                       direction: direction)
        }
    }

    // MARK: PacketDevice

    public var pollDescriptor: Int32? { nil }
    /// Not a source: never exhausted, never gives packets.
    public var isExhausted: Bool { false }
    public func read(into batch: PacketBatch) throws(SystemError) -> Int { 0 }

    /// Records packets `range` (not marked dropped) with their own timestamps and directions.
    public func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int {
        for i in range where !batch.dropped[i] {
            try record(UnsafeRawBufferPointer(batch.packet(i)), at: batch.timestamps[i],
                       direction: batch.directions[i])
        }
        return range.count
    }

    // MARK: Buffer encoding (callers ensure room)

    private func put16(_ value: UInt16) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: used, as: UInt16.self)
        used += 2
    }

    private func putBE16(_ value: UInt16) {
        buffer.storeBytes(of: value.bigEndian, toByteOffset: used, as: UInt16.self)
        used += 2
    }

    private func put32(_ value: UInt32) {
        buffer.storeBytes(of: value.littleEndian, toByteOffset: used, as: UInt32.self)
        used += 4
    }
}
