import Wire
import CLibpcap

/// Reads the IP packets of a pcap or pcapng file (through libpcap, nanosecond timestamps) as
/// a `PacketDevice`: the source of `tsmp replay`. Each packet keeps its capture time as its
/// `Instant` and, for Linux cooked captures, its direction (SLL "outgoing" = `.outbound`).
///
/// Invariants:
/// - No file makes it trap. Problems at open throw `PcapFileError` naming the file (missing,
///   unreadable, empty, not a capture, unsupported link type). Problems later never throw:
///   records are skipped and counted in `skipped` by reason, records cut short by the snap
///   length (caplen < len) are delivered as captured and counted in `truncatedRecords`, and a
///   corrupt or cut-off tail ends the file with its reason in `stopReason`.
/// - `read` copies each packet into the batch once and allocates nothing; it stops before
///   fetching a record when the batch is full, so no record is ever lost between calls.
/// - `isExhausted` becomes true at end of file, at a corrupt tail, or after `close()`.
public final class PcapFileReader: PacketDevice {
    public let path: String
    public let linkType: PcapLinkType
    /// Records read from the file (delivered or skipped).
    public private(set) var recordsRead = 0
    public private(set) var packetsDelivered = 0
    /// Records shorter than the packet on the wire (snap length): delivered as captured.
    public private(set) var truncatedRecords = 0
    public private(set) var skipped = PcapSkipCounts()
    /// Why reading stopped before a clean end of file (libpcap's message), if it did.
    public private(set) var stopReason: String?
    public private(set) var isExhausted = false

    private var handle: OpaquePointer?

    public init(path: String) throws(PcapFileError) {
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        let opened = pcap_open_offline_with_tstamp_precision(
            path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errorBuffer)
        guard let opened else {
            let reason = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw .cannotOpen(path: path, reason: reason.isEmpty ? "unknown error" : reason)
        }
        let dlt = pcap_datalink(opened)
        guard let type = PcapLinkType(dlt: dlt) else {
            let name = pcap_datalink_val_to_name(dlt).map { String(cString: $0) } ?? "unknown"
            pcap_close(opened)
            throw .unsupportedLinkType(path: path, dlt: dlt, name: name)
        }
        self.path = path
        self.linkType = type
        self.handle = opened
    }

    deinit { if let handle { pcap_close(handle) } }

    public func close() {
        if let handle { pcap_close(handle) }
        handle = nil
        isExhausted = true
    }

    public var pollDescriptor: Int32? { nil }

    public func read(into batch: PacketBatch) throws(SystemError) -> Int {
        guard let handle else { return 0 }
        let first = batch.count
        var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
        var data: UnsafePointer<UInt8>? = nil
        while !batch.isFull && !isExhausted {
            let status = pcap_next_ex(handle, &header, &data)
            guard status == 1, let header, let data else {
                if status != PCAP_ERROR_BREAK && status != 0 {
                    stopReason = String(cString: pcap_geterr(handle))
                }
                isExhausted = true
                break
            }
            recordsRead += 1
            let frame = UnsafeRawBufferPointer(start: data, count: Int(header.pointee.caplen))
            switch linkType.locateIP(in: frame) {
            case .skip(let reason):
                skipped[reason] += 1
            case .ip(let range, let direction):
                if range.count > batch.maxPacket {
                    skipped.tooLargeForBatch += 1
                    continue
                }
                if header.pointee.caplen < header.pointee.len { truncatedRecords += 1 }
                batch.append(UnsafeRawBufferPointer(rebasing: frame[range]),
                             at: Self.instant(header.pointee.ts), direction: direction)
                packetsDelivered += 1
            }
        }
        return batch.count - first
    }

    /// A reader takes no packets: writes are discarded (all of `range` is reported consumed).
    public func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int {
        range.count
    }

    /// With PCAP_TSTAMP_PRECISION_NANO, `tv_usec` holds nanoseconds. Times before 1970 (a
    /// negative field in a corrupt file) clamp to 0; absurdly late ones saturate.
    static func instant(_ ts: timeval) -> Instant {
        let seconds = UInt64(clamping: ts.tv_sec)
        let nanos = UInt64(clamping: ts.tv_usec)
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return Instant(nanoseconds: .max) }
        let (sum, overflow2) = scaled.addingReportingOverflow(nanos)
        return Instant(nanoseconds: overflow2 ? .max : sum)
    }
}

extension PcapFileReader {
    /// Every packet of the file, in order, as byte arrays (for tests and offline benchmarks;
    /// at most `limit` packets).
    public func readAll(limit: Int = 10_000_000) throws(SystemError) -> [[UInt8]] {
        let batch = PacketBatch(capacity: 64)
        var out: [[UInt8]] = []
        while !isExhausted && out.count < limit {
            batch.removeAll()
            _ = try read(into: batch)
            for i in 0..<batch.count { out.append(batch.bytes(i)) }
        }
        return out
    }
}
