/// A batch of packets in one pre-allocated slab, each slot with headroom in front of the
/// packet so a header can be prepended without copying (wireguard-go's tun API shape).
///
/// Invariants: `count <= capacity`; packet `i` occupies
/// `slab[i * slotSize + headroom + offset[i] ..< ... + length[i]]`; nothing is allocated after
/// `init`. A batch of capacity 1 is a valid device batch.
///
/// The per-packet metadata lives in buffers allocated once with the slab, not in arrays held
/// by the class: an array property of a class is checked for exclusive access on every use
/// (a runtime call), which cost more than the engine's own work per packet.
public final class PacketBatch {
    public let capacity: Int
    public let slotSize: Int
    public let headroom: Int
    /// Packets in the batch.
    public var count: Int { countStorage.pointee }
    private let countStorage: UnsafeMutablePointer<Int>
    /// Per-packet metadata (timestamps from pcap files, direction for captures).
    public let timestamps: UnsafeMutableBufferPointer<Instant>
    public let directions: UnsafeMutableBufferPointer<PacketDirection>
    /// Per-packet offload metadata (the virtio-net header a TUN opened with IFF_VNET_HDR puts
    /// in front of each packet): a partial checksum to finish, a super-segment to cut. A TUN
    /// writes it back with the packet; all-zero (none) for packets made in user space.
    public let offloads: UnsafeMutableBufferPointer<VirtioNetHeader>
    /// Packets the engine decided not to forward; every device's `write` skips them.
    public var dropped: DroppedFlags { DroppedFlags(flags: droppedFlags) }
    let droppedFlags: UnsafeMutableBufferPointer<Bool>
    let lengths: UnsafeMutableBufferPointer<Int>
    let offsets: UnsafeMutableBufferPointer<Int>   // extra shift inside the slot (headroom adjustments)
    let slab: UnsafeMutableRawBufferPointer

    /// Read-only view of which packets are marked dropped (`markDropped`).
    public struct DroppedFlags {
        let flags: UnsafeMutableBufferPointer<Bool>
        public subscript(i: Int) -> Bool { flags[i] }
    }

    /// - Parameters:
    ///   - capacity: packets per batch.
    ///   - maxPacket: largest packet a slot holds (65,535 + virtio header for offloads).
    ///   - headroom: bytes kept free in front of each packet.
    public init(capacity: Int, maxPacket: Int = 65_535, headroom: Int = 64) {
        precondition(capacity > 0 && maxPacket > 0 && headroom >= 0)
        self.capacity = capacity
        self.headroom = headroom
        self.slotSize = headroom + maxPacket
        self.slab = .allocate(byteCount: capacity * slotSize, alignment: 16)
        self.lengths = Self.column(capacity, 0)
        self.offsets = Self.column(capacity, 0)
        self.timestamps = Self.column(capacity, Instant(nanoseconds: 0))
        self.directions = Self.column(capacity, .inbound)
        self.droppedFlags = Self.column(capacity, false)
        self.offloads = Self.column(capacity, VirtioNetHeader())
        self.countStorage = .allocate(capacity: 1)
        self.countStorage.initialize(to: 0)
    }

    private static func column<T>(_ n: Int, _ value: T) -> UnsafeMutableBufferPointer<T> {
        let b = UnsafeMutableBufferPointer<T>.allocate(capacity: n)
        b.initialize(repeating: value)
        return b
    }

    deinit {
        slab.deallocate()
        lengths.deallocate()
        offsets.deallocate()
        timestamps.deallocate()
        directions.deallocate()
        droppedFlags.deallocate()
        offloads.deallocate()
        countStorage.deallocate()
    }

    public var isFull: Bool { count == capacity }
    public var maxPacket: Int { slotSize - headroom }

    /// Empties the batch; storage is kept.
    public func removeAll() { countStorage.pointee = 0 }

    /// The whole writable slot `i` after its headroom, for a device to read into.
    /// Call `commit(slot:length:)` afterwards.
    public func slotBuffer(_ i: Int) -> UnsafeMutableRawBufferPointer {
        precondition(i < capacity)
        let base = i * slotSize + headroom
        return UnsafeMutableRawBufferPointer(rebasing: slab[base ..< base + maxPacket])
    }

    /// Marks slot `count` as holding `length` bytes (written through `slotBuffer(count)`).
    public func commitNext(length: Int, at time: Instant = Instant(nanoseconds: 0),
                           direction: PacketDirection = .inbound) {
        precondition(count < capacity && length >= 0 && length <= maxPacket)
        lengths[count] = length
        offsets[count] = 0
        timestamps[count] = time
        directions[count] = direction
        droppedFlags[count] = false
        offloads[count] = VirtioNetHeader()
        countStorage.pointee += 1
    }

    /// Copies `bytes` into the next slot. Returns false (and copies nothing) when the batch is
    /// full or the packet is larger than a slot.
    @discardableResult
    public func append(_ bytes: UnsafeRawBufferPointer, at time: Instant = Instant(nanoseconds: 0),
                       direction: PacketDirection = .inbound) -> Bool {
        guard count < capacity, bytes.count <= maxPacket else { return false }
        let dst = slotBuffer(count)
        if let src = bytes.baseAddress, bytes.count > 0 {
            dst.baseAddress!.copyMemory(from: src, byteCount: bytes.count)
        }
        commitNext(length: bytes.count, at: time, direction: direction)
        return true
    }

    @discardableResult
    public func append(_ bytes: [UInt8], at time: Instant = Instant(nanoseconds: 0),
                       direction: PacketDirection = .inbound) -> Bool {
        bytes.withUnsafeBytes { append($0, at: time, direction: direction) }
    }

    /// Packet `i`, mutable in place.
    public func packet(_ i: Int) -> UnsafeMutableRawBufferPointer {
        precondition(i < count)
        let base = i * slotSize + headroom + offsets[i]
        return UnsafeMutableRawBufferPointer(rebasing: slab[base ..< base + lengths[i]])
    }

    /// Changes packet `i`'s length (after trimming or extending it in place inside its slot).
    public func setLength(_ i: Int, _ length: Int) {
        precondition(i < count && offsets[i] + length <= maxPacket && length >= 0)
        lengths[i] = length
    }

    /// Appends `bytes` after packet `i` inside its slot (coalescing segments into one).
    /// Returns false, changing nothing, when the slot has no room for them.
    @discardableResult
    public func extend(_ i: Int, with bytes: UnsafeRawBufferPointer) -> Bool {
        precondition(i < count)
        let length = lengths[i]
        guard offsets[i] + length + bytes.count <= maxPacket else { return false }
        if let src = bytes.baseAddress, bytes.count > 0 {
            let base = i * slotSize + headroom + offsets[i] + length
            (slab.baseAddress! + base).copyMemory(from: src, byteCount: bytes.count)
        }
        lengths[i] = length + bytes.count
        return true
    }

    /// Replaces packet `i` with `bytes`, from the start of its slot, offload metadata cleared.
    /// Returns false, changing nothing, when they do not fit a slot.
    @discardableResult
    public func replace(_ i: Int, with bytes: UnsafeRawBufferPointer) -> Bool {
        precondition(i < count)
        guard bytes.count <= maxPacket else { return false }
        if let src = bytes.baseAddress, bytes.count > 0 {
            slotBuffer(i).baseAddress!.copyMemory(from: src, byteCount: bytes.count)
        }
        offsets[i] = 0
        lengths[i] = bytes.count
        offloads[i] = VirtioNetHeader()
        return true
    }

    /// Marks packet `i` as not to be written.
    public func markDropped(_ i: Int) {
        precondition(i < count)
        droppedFlags[i] = true
    }

    /// A copy of packet `i` (tests, captures).
    public func bytes(_ i: Int) -> [UInt8] { Array(packet(i)) }
}

/// Which way a packet crossed the engine's boundary, as recorded in captures.
public enum PacketDirection: UInt8, Sendable {
    /// Read by the engine (from the TUN, a raw socket, a pcap file).
    case inbound = 0
    /// Written by the engine.
    case outbound = 4
}

/// A point in time in nanoseconds on some monotonic or capture clock. The engine never reads
/// a clock itself: the caller passes `now` (sans-IO).
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }
    public static func seconds(_ s: Double) -> Instant { Instant(nanoseconds: UInt64(s * 1e9)) }
    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    /// Seconds with six decimals, e.g. "12.000345s" (no Foundation: `String(format:)` is not
    /// in the standard library).
    public var description: String {
        let micros = nanoseconds / 1_000
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)s"
    }
}
