import Wire

/// Reassembly of IPv4 datagrams that reach the engine in fragments (RFC 791 §3.2; RFC 815's
/// bookkeeping of what is still missing). The gateway's kernel reassembles before routing, so
/// every piece of a managed flow is steered into the TUN (`ReassemblyTable`), but a Linux router
/// cuts a reassembled datagram back into its original pieces on the way out (it keeps the
/// largest fragment's size), so the engine gets the pieces and puts them together again. The
/// whole TCP segment is then handled as any other: rewritten, and fragmented again by the
/// kernel on the next link if it does not fit and DF is clear.
///
/// A datagram is identified by source, destination, protocol and identification (RFC 791
/// §3.2). Like Linux since 4.19 and as RFC 5722 asks for IPv6, a fragment that overlaps one
/// already held discards the whole datagram (overlaps are how firewalls are evaded); a
/// duplicate (wholly inside what arrived) is ignored. Nothing is held longer than `timeout` (RFC 791's recommended 15 s
/// initial timer).
///
/// Limits (a flood of first fragments must not exhaust the gateway): at most
/// `maxDatagrams` datagrams and `maxBytes` bytes held in all, and `maxPerSource` datagrams per
/// source address. A fragment beyond a limit is dropped, and nothing held is evicted for it.
struct IPv4Reassembly {
    static let timeout: UInt64 = 15_000_000_000
    var maxDatagrams = 256
    var maxBytes = 4 << 20
    var maxPerSource = 32

    struct Key: Hashable {
        var source: UInt32, destination: UInt32, identification: UInt16, proto: UInt8
    }

    private struct Datagram {
        /// The first fragment's IP header (offset 0), once it came.
        var header: [UInt8]?
        /// The payload, as far as it is known; `received` says which parts arrived.
        var payload: [UInt8] = []
        /// Byte ranges received, sorted, not overlapping.
        var received: [Range<Int>] = []
        /// The payload's length, once the last fragment (MF clear) came.
        var total: Int?
        var deadline: Instant
        /// Fragments that went in (duplicates not counted).
        var pieces = 0
        var heldBytes: Int { payload.count + (header?.count ?? 0) }

        var isComplete: Bool {
            guard header != nil, let total else { return false }
            return received.count == 1 && received[0] == 0..<total
        }
    }

    enum Outcome: Equatable {
        /// Kept until the rest arrives.
        case held
        /// The datagram is whole: its bytes, header first (MF and offset cleared, checksum redone).
        case complete([UInt8])
        /// Dropped, and with it the datagram it belonged to when the reason says so.
        case dropped(DropReason)
    }

    private var pending: [Key: Datagram] = [:]
    private var perSource: [UInt32: Int] = [:]
    private(set) var bytesHeld = 0
    /// How many fragments the datagram last completed was made of.
    private(set) var lastPieces = 0

    var datagramsHeld: Int { pending.count }

    /// Adds one fragment (`packet.isFragment`). Datagrams whose time is up are given up by
    /// `expire(now:)`, which the caller runs once per batch, not here per fragment.
    mutating func add(_ packet: IPv4Packet, now: Instant) -> Outcome {
        let offset = packet.fragmentOffset
        let piece = UnsafeRawBufferPointer(packet.payload)
        let end = offset + piece.count
        // Every fragment but the last carries a multiple of 8 bytes (RFC 791 §3.2), and the
        // datagram cannot grow past 65,535 bytes.
        guard !(packet.moreFragments && (piece.isEmpty || piece.count % 8 != 0)),
              end + packet.headerLength <= 65_535 else { return .dropped(.fragmentMalformed) }
        let key = Key(source: packet.source.value, destination: packet.destination.value,
                      identification: packet.identification, proto: packet.protocolNumber)

        // Taken out of the table while it is changed, so its payload is not copied (copy on
        // write) for every piece; put back unless it is complete or given up.
        var d: Datagram
        if let held = pending.removeValue(forKey: key) {
            d = held
        } else {
            guard pending.count < maxDatagrams, perSource[key.source, default: 0] < maxPerSource else {
                return .dropped(.fragmentLimit)
            }
            d = Datagram(deadline: Instant(nanoseconds: now.nanoseconds &+ Self.timeout))
            perSource[key.source, default: 0] += 1
        }
        if d.received.contains(where: { $0.lowerBound <= offset && end <= $0.upperBound && !piece.isEmpty })
            || (piece.isEmpty && d.total == end) {
            pending[key] = d
            return .held   // a duplicate: inside what arrived already (kept as it first came)
        }
        if d.received.contains(where: { $0.overlaps(offset..<end) })
            || (!packet.moreFragments && d.total.map { $0 != end } ?? false)
            || (!packet.moreFragments && (d.received.last?.upperBound ?? 0) > end)
            || (d.total.map { end > $0 } ?? false) {
            forget(d, of: key.source)
            return .dropped(.fragmentOverlap)
        }
        let growth = max(0, end - d.payload.count) + (offset == 0 ? packet.headerLength : 0)
        guard bytesHeld + growth <= maxBytes else {
            forget(d, of: key.source)
            return .dropped(.fragmentLimit)
        }
        if end > d.payload.count { d.payload.append(contentsOf: repeatElement(0, count: end - d.payload.count)) }
        if !piece.isEmpty {
            d.payload.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: offset).copyMemory(from: piece.baseAddress!, byteCount: piece.count) }
            Self.insert(offset..<end, into: &d.received)
        }
        if offset == 0 {
            d.header = Array(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(packet.bytes)[0..<packet.headerLength]))
        }
        if !packet.moreFragments { d.total = end }
        d.pieces += 1
        bytesHeld += growth
        guard d.isComplete, let header = d.header else {
            pending[key] = d
            return .held
        }
        forget(d, of: key.source)
        lastPieces = d.pieces
        return .complete(Self.datagram(header: header, payload: d.payload))
    }

    /// Gives up datagrams whose time is up; how many.
    mutating func expire(now: Instant) -> Int {
        guard !pending.isEmpty else { return 0 }
        let late = pending.filter { now.nanoseconds > $0.value.deadline.nanoseconds }
        for (key, d) in late {
            pending[key] = nil
            forget(d, of: key.source)
        }
        return late.count
    }

    /// Releases what a datagram no longer in `pending` was counted for.
    private mutating func forget(_ d: Datagram, of source: UInt32) {
        bytesHeld -= d.heldBytes
        let left = perSource[source, default: 1] - 1
        perSource[source] = left > 0 ? left : nil
    }

    /// Adds `r` (not empty, overlapping none of them) to sorted, disjoint `ranges`, joined
    /// with the neighbours it touches.
    private static func insert(_ r: Range<Int>, into ranges: inout [Range<Int>]) {
        var i = ranges.firstIndex { $0.lowerBound >= r.upperBound } ?? ranges.count
        var joined = r
        if i < ranges.count && ranges[i].lowerBound == r.upperBound {
            joined = joined.lowerBound..<ranges[i].upperBound
            ranges.remove(at: i)
        }
        if i > 0 && ranges[i - 1].upperBound == r.lowerBound {
            joined = ranges[i - 1].lowerBound..<joined.upperBound
            ranges.remove(at: i - 1)
            i -= 1
        }
        ranges.insert(joined, at: i)
    }

    /// The whole datagram: the first fragment's header with the total length set, MF and the
    /// offset cleared (DF as it was), and a new header checksum.
    static func datagram(header: [UInt8], payload: [UInt8]) -> [UInt8] {
        var bytes = header + payload
        let total = bytes.count
        bytes.withUnsafeMutableBytes { raw in
            raw[2] = UInt8(total >> 8); raw[3] = UInt8(total & 0xFF)
            raw[6] &= 0x40; raw[7] = 0
            (try? IPv4Packet(validating: raw))?.fillHeaderChecksum()
        }
        return bytes
    }
}
