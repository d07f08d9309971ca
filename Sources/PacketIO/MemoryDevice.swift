import Wire
/// An in-memory `PacketDevice` for tests (NIOEmbedded's idea): packets queued with
/// `enqueue` are what `read` gives; packets written are recorded in `written`. Optional
/// faults: a per-packet refusal rule (counted in `writeErrors` like a real device) and a
/// limit on how many packets `write` accepts before it "would block".
///
/// Invariants: `read` delivers queued packets in order, each once, as many as fit in the
/// batch; a packet larger than a batch slot is dropped and counted in `oversizedDrops`
/// (never stalls the queue). `write` skips packets marked dropped. Allocates freely: tests only.
public final class MemoryDevice: PacketDevice, WriteErrorCounting {
    public struct Packet: Equatable, Sendable {
        public var bytes: [UInt8]
        public var time: Instant
        public var direction: PacketDirection
        public init(_ bytes: [UInt8], time: Instant = Instant(nanoseconds: 0), direction: PacketDirection = .inbound) {
            self.bytes = bytes
            self.time = time
            self.direction = direction
        }
    }

    /// Packets waiting to be read.
    public var pending: ArraySlice<Packet> { queue[readIndex...] }
    /// Packets written, in order.
    public private(set) var written: [Packet] = []
    public private(set) var writeErrors = ErrnoCounts()
    public private(set) var oversizedDrops = 0
    /// When set, the errno with which the device refuses a packet (nil: accept).
    public var refuse: (([UInt8]) -> Int32?)?
    /// When set, `write` accepts at most this many more packets, then would block.
    public var writeBudget: Int?
    /// A finite source (like a file) is exhausted once its queue is empty.
    public var isFinite: Bool

    private var queue: [Packet] = []
    private var readIndex = 0

    public init(isFinite: Bool = false) { self.isFinite = isFinite }

    public func enqueue(_ bytes: [UInt8], at time: Instant = Instant(nanoseconds: 0),
                        direction: PacketDirection = .inbound) {
        queue.append(Packet(bytes, time: time, direction: direction))
    }

    /// Forgets what was written.
    public func removeWritten() { written.removeAll() }

    public var pollDescriptor: Int32? { nil }
    public var isExhausted: Bool { isFinite && readIndex == queue.count }

    public func read(into batch: PacketBatch) throws(SystemError) -> Int {
        let first = batch.count
        while !batch.isFull && readIndex < queue.count {
            let packet = queue[readIndex]
            readIndex += 1
            if !batch.append(packet.bytes, at: packet.time, direction: packet.direction) {
                oversizedDrops += 1
            }
        }
        if readIndex == queue.count {
            queue.removeAll(keepingCapacity: true)
            readIndex = 0
        }
        return batch.count - first
    }

    public func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int {
        for i in range where !batch.dropped[i] {
            if let budget = writeBudget {
                if budget == 0 { return i - range.lowerBound }
                writeBudget = budget - 1
            }
            let bytes = batch.bytes(i)
            if let code = refuse?(bytes) {
                writeErrors.record(code)
                continue
            }
            written.append(Packet(bytes, time: batch.timestamps[i], direction: batch.directions[i]))
        }
        return range.count
    }
}
