import Wire
/// A batched packet device (TUN, raw socket, pcap file, memory). Many packets per call; a
/// device that moves one packet per syscall is still a valid implementation.
public protocol PacketDevice: AnyObject {
    /// Appends packets to `batch` until it is full or nothing more is ready without blocking.
    /// Returns how many were read; 0 means nothing is ready (or end of file for files, then
    /// `isExhausted` is true).
    func read(into batch: PacketBatch) throws(SystemError) -> Int
    /// Writes packets `range` of `batch`, skipping those marked dropped (`batch.dropped[i]`);
    /// returns how many were written. Packets the device
    /// refuses one by one (e.g. EMSGSIZE, unreachable) are counted in `writeErrors` and skipped,
    /// never thrown: only a broken device throws.
    func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int
    /// The descriptor to poll for readability, when there is one.
    var pollDescriptor: Int32? { get }
    /// True when a finite source (a file) has nothing more to give.
    var isExhausted: Bool { get }
}
