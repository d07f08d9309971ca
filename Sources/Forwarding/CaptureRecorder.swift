import Engine
import Logging
import PacketIO
import Wire
import Synchronization

/// The capture file shared by every data-plane thread: records are appended under a lock
/// (captures are for debugging, not the fast path). A capture that fails (disk full) is
/// closed for good and forwarding goes on without it. Given the engine that handled a batch,
/// the recorder also notes the migration phases it entered and writes them as comments on
/// the flow's next packets (`CapturePhaseComments`; a pcapng writer keeps them).
final class CaptureRecorder: @unchecked Sendable {
    let writer: PcapFileWriter
    private let logger: Logger
    /// Guards `writer`, the failure and the comments waiting for a packet.
    private let lock = Mutex((failed: false, comments: CapturePhaseComments()))

    init(writer: PcapFileWriter, logger: Logger) {
        self.writer = writer
        self.logger = logger
    }

    /// Records the batch's packets (not marked dropped); with `engine` (on its loop thread),
    /// first takes in the migration phases it journaled since its last batch.
    func record(_ batch: PacketBatch, direction: PacketDirection, engine: SpliceEngine? = nil) {
        lock.withLock { state in
            guard !state.failed else { return }
            let now = Syscall.wallClockNow()
            if let engine { state.comments.collect(from: engine, now: now) }
            do {
                for i in 0..<batch.count where !batch.dropped[i] {
                    let packet = UnsafeRawBufferPointer(batch.packet(i))
                    try writer.record(packet, at: now, direction: direction, comments: state.comments.take(for: packet, now: now))
                }
            } catch {
                state.failed = true
                logger.error("capture failed; forwarding goes on without it", metadata: ["error": "\(error)", "capture.path": "\(writer.path)"])
            }
        }
    }
}
