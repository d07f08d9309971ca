import Wire
/// Middleware (smoltcp's `PcapWriter` idea): wraps any `PacketDevice` and records what
/// passes through it into a `PcapFileWriter`: packets read as `.inbound`, packets written as
/// `.outbound`. This is `tsmp proxy --capture`.
///
/// Invariants:
/// - Forwarding never depends on the capture: the wrapped device's results and errors pass
///   through unchanged; if recording fails (disk full...), recording stops, the error is kept
///   in `captureError` and packets keep flowing.
/// - Only what the wrapped device consumed is recorded (packets marked dropped are not, nor
///   packets left over when it would block). Packets it refused are recorded: the engine did
///   write them.
/// - Timestamps: one `clock()` reading per `read`/`write` call (wall clock by default); with
///   `clock: nil`, each packet's own batch timestamp (replays).
public final class CaptureDevice: PacketDevice, WriteErrorCounting {
    public let base: any PacketDevice
    public let writer: PcapFileWriter
    public private(set) var captureError: SystemError?
    private let clock: (() -> Instant)?

    public init(wrapping base: any PacketDevice, into writer: PcapFileWriter,
                clock: (() -> Instant)? = { Syscall.wallClockNow() }) {
        self.base = base
        self.writer = writer
        self.clock = clock
    }

    public var pollDescriptor: Int32? { base.pollDescriptor }
    public var isExhausted: Bool { base.isExhausted }
    public var writeErrors: ErrnoCounts { (base as? WriteErrorCounting)?.writeErrors ?? ErrnoCounts() }

    public func read(into batch: PacketBatch) throws(SystemError) -> Int {
        let first = batch.count
        let n = try base.read(into: batch)
        capture(batch, first ..< first + n, .inbound)
        return n
    }

    public func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int {
        let n = try base.write(batch, range)
        capture(batch, range.lowerBound ..< range.lowerBound + n, .outbound)
        return n
    }

    /// Flushes the capture file (e.g. on a timer, so a crash loses little).
    public func flush() {
        guard captureError == nil else { return }
        do { try writer.flush() } catch { captureError = error }
    }

    private func capture(_ batch: PacketBatch, _ range: Range<Int>, _ direction: PacketDirection) {
        guard captureError == nil, !range.isEmpty else { return }
        do {
            try writer.record(batch, range, direction: direction, at: clock?())
        } catch {
            captureError = error
        }
    }
}
