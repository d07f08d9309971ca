import Logging
import PacketIO
import Wire
import Synchronization

/// The capture file shared by every data-plane thread: records are appended under a lock
/// (captures are for debugging, not the fast path). A capture that fails (disk full) is
/// closed for good and forwarding goes on without it.
final class CaptureRecorder: @unchecked Sendable {
    let writer: PcapFileWriter
    private let logger: Logger
    /// Guards `writer` and `failed`.
    private let lock = Mutex(false)

    init(writer: PcapFileWriter, logger: Logger) {
        self.writer = writer
        self.logger = logger
    }

    func record(_ batch: PacketBatch, direction: PacketDirection) {
        lock.withLock { failed in
            guard !failed else { return }
            do {
                try writer.record(batch, 0..<batch.count, direction: direction, at: Syscall.wallClockNow())
            } catch {
                failed = true
                logger.error("capture failed; forwarding goes on without it", metadata: ["error": "\(error)", "capture.path": "\(writer.path)"])
            }
        }
    }
}
