import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Writes packets to a capture file (nanosecond timestamps, little-endian) as a `PacketDevice`:
/// the sink of `tsmp proxy --capture` (pcapng, through the data plane's `CaptureRecorder`, which
/// adds the migrations' phases as packet comments) and of `tsmp replay --out` (classic pcap).
/// In the `.pcapng` format (`PcapngBlock`) a packet may carry comments (`opt_comment`); the
/// classic format has no place for them and leaves them out. With the default link type
/// LINUX_SLL each record keeps its
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

    /// The file format: classic pcap (what every tool reads) or pcapng (packet comments).
    public enum Format: Sendable, Equatable {
        case pcap
        case pcapng
    }

    public let path: String
    public let linkType: LinkType
    public let format: Format
    public let snapLength: Int
    public private(set) var packetsWritten = 0

    private var fileDescriptor: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0

    private static let recordHeaderLength = 16
    /// ARPHRD_NONE: a device without link-layer header, what a TUN is.
    private static let hardwareTypeNone: UInt16 = 0xFFFE

    /// Creates (or truncates) `path` and writes the file header.
    public init(path: String, linkType: LinkType = .linuxSLL, format: Format = .pcap, snapLength: Int = 262_144,
                bufferBytes: Int = 1 << 20) throws(SystemError) {
        precondition(snapLength >= 64 && bufferBytes >= 64)
        self.path = path
        self.linkType = linkType
        self.format = format
        self.snapLength = snapLength
        self.fileDescriptor = try Syscall.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        self.buffer = .allocate(byteCount: bufferBytes, alignment: 8)
        switch format {
        case .pcap:
            put32(0xA1B2_3C4D)              // magic: nanosecond timestamps
            put16(2); put16(4)              // version 2.4
            put32(0); put32(0)              // thiszone, sigfigs
            put32(UInt32(clamping: snapLength))
            put32(linkType.pcapLinkType.fileValue)
        case .pcapng:
            // (A failure here releases the writer: `deinit` closes the file and frees the buffer.)
            try append(PcapngBlock.sectionHeader(application: "tsmp"))
            try append(PcapngBlock.interfaceDescription(linkType: linkType.pcapLinkType.fileValue, snapLength: snapLength))
        }
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

    /// Records one packet with an explicit time and direction, and in a pcapng file its
    /// `comments` (each one `opt_comment`; a classic pcap leaves them out).
    public func record(_ packet: UnsafeRawBufferPointer, at time: Instant,
                       direction: PacketDirection, comments: [String] = []) throws(SystemError) {
        guard fileDescriptor >= 0 else { return }
        let linkHeader = linkType.headerLength
        let captured = min(packet.count, snapLength - linkHeader)
        let frameLength = linkHeader + captured
        let originalLength = UInt32(clamping: linkHeader + packet.count)
        var options: [UInt8] = []
        var blockLength = 0
        switch format {
        case .pcap:
            try reserve(Self.recordHeaderLength + linkHeader)
            put32(UInt32(clamping: time.nanoseconds / 1_000_000_000))
            put32(UInt32(time.nanoseconds % 1_000_000_000))
            put32(UInt32(frameLength))
            put32(originalLength)
        case .pcapng:
            // Enhanced Packet Block (pcapng §4.3): interface 0, the time in units of if_tsresol (ns).
            options = PcapngBlock.packetOptions(comments: comments)
            blockLength = PcapngBlock.enhancedPacketLength(frameLength: frameLength, optionsLength: options.count)
            try reserve(PcapngBlock.enhancedPacketHeaderLength + linkHeader)
            put32(PcapngBlock.enhancedPacketType)
            put32(UInt32(clamping: blockLength))
            put32(0)
            put32(UInt32(truncatingIfNeeded: time.nanoseconds >> 32))
            put32(UInt32(truncatingIfNeeded: time.nanoseconds))
            put32(UInt32(frameLength))
            put32(originalLength)
        }
        if linkType == .linuxSLL {
            putBE16(UInt16(direction.rawValue))   // packet type: 0 host, 4 outgoing
            putBE16(Self.hardwareTypeNone)
            putBE16(0)                            // link-layer address length
            put32(0); put32(0)                    // link-layer address (none)
            let version = packet.count > 0 ? packet[0] >> 4 : 0
            putBE16(version == 4 ? 0x0800 : version == 6 ? 0x86DD : 0)
        }
        try append(UnsafeRawBufferPointer(rebasing: packet[0..<captured]))
        if format == .pcapng {
            let padding = PcapngBlock.padded(frameLength) - frameLength
            try reserve(padding)
            for _ in 0..<padding { buffer[used] = 0; used += 1 }
            try append(options)
            try reserve(4)
            put32(UInt32(clamping: blockLength))
        }
        packetsWritten += 1
    }

    /// Records one packet given as an array (tests, tools).
    public func record(_ packet: [UInt8], at time: Instant, direction: PacketDirection,
                       comments: [String] = []) throws(SystemError) {
        // Array.withUnsafeBytes is `rethrows` (untyped): carry the typed error out in a Result.
        let result: Result<Void, SystemError> = packet.withUnsafeBytes { raw in
            Result { () throws(SystemError) in try record(raw, at: time, direction: direction, comments: comments) }
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

    // MARK: Buffer encoding

    /// Makes room for `count` more bytes in the buffer (`count` is at most 64: headers).
    private func reserve(_ count: Int) throws(SystemError) {
        if used + count > buffer.count { try flush() }
    }

    /// Appends `bytes`: copied into the buffer when they fit, else written straight after it.
    private func append(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        guard bytes.count > 0 else { return }
        if used + bytes.count > buffer.count { try flush() }
        if bytes.count <= buffer.count {
            (buffer.baseAddress! + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            used += bytes.count
        } else {
            try Syscall.writeAll(fileDescriptor, bytes)
        }
    }

    private func append(_ bytes: [UInt8]) throws(SystemError) {
        let result: Result<Void, SystemError> = bytes.withUnsafeBytes { raw in
            Result { () throws(SystemError) in try append(raw) }
        }
        try result.get()
    }

    // The fixed-size puts below: callers made room with `reserve`.

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
