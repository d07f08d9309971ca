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
    /// Datagrams given up after `timeout`.
    private(set) var timedOut: UInt64 = 0
    /// How many fragments the datagram last completed was made of.
    private(set) var lastPieces = 0

    var datagramsHeld: Int { pending.count }

    /// Adds one fragment (`packet.isFragment`).
    mutating func add(_ packet: IPv4Packet, now: Instant) -> Outcome {
        expire(now: now)
        let offset = packet.fragmentOffset
        let piece = UnsafeRawBufferPointer(packet.payload)
        let end = offset + piece.count
        // Every fragment but the last carries a multiple of 8 bytes (RFC 791 §3.2), and the
        // datagram cannot grow past 65,535 bytes.
        guard !(packet.moreFragments && (piece.isEmpty || piece.count % 8 != 0)),
              end + packet.headerLength <= 65_535 else { return .dropped(.fragmentMalformed) }
        let key = Key(source: packet.source.value, destination: packet.destination.value,
                      identification: packet.identification, proto: packet.protocolNumber)

        var d: Datagram
        if let held = pending[key] {
            d = held
        } else {
            guard pending.count < maxDatagrams, perSource[key.source, default: 0] < maxPerSource else {
                return .dropped(.fragmentLimit)
            }
            d = Datagram(deadline: Instant(nanoseconds: now.nanoseconds &+ Self.timeout))
        }
        if d.received.contains(where: { $0.lowerBound <= offset && end <= $0.upperBound && !piece.isEmpty })
            || (piece.isEmpty && d.total == end) {
            return .held   // a duplicate: inside what arrived already (kept as it first came)
        }
        if d.received.contains(where: { $0.overlaps(offset..<end) })
            || (!packet.moreFragments && d.total.map { $0 != end } ?? false)
            || (!packet.moreFragments && (d.received.last?.upperBound ?? 0) > end)
            || (d.total.map { end > $0 } ?? false) {
            discard(key)
            return .dropped(.fragmentOverlap)
        }
        let growth = max(0, end - d.payload.count) + (offset == 0 ? packet.headerLength : 0)
        guard bytesHeld + growth <= maxBytes else {
            if pending[key] == nil { return .dropped(.fragmentLimit) }
            discard(key)
            return .dropped(.fragmentLimit)
        }
        if end > d.payload.count { d.payload.append(contentsOf: repeatElement(0, count: end - d.payload.count)) }
        d.payload.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: offset).copyMemory(from: piece.baseAddress!, byteCount: piece.count) }
        insert(offset..<end, into: &d.received)
        if offset == 0 {
            d.header = Array(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(packet.bytes)[0..<packet.headerLength]))
        }
        if !packet.moreFragments { d.total = end }
        d.pieces += 1

        if pending[key] == nil { perSource[key.source, default: 0] += 1 }
        bytesHeld += growth
        guard d.isComplete, let header = d.header else {
            pending[key] = d
            return .held
        }
        pending[key] = d
        discard(key)
        lastPieces = d.pieces
        return .complete(Self.datagram(header: header, payload: d.payload))
    }

    /// Gives up datagrams whose time is up.
    mutating func expire(now: Instant) {
        guard !pending.isEmpty else { return }
        for (key, d) in pending where now.nanoseconds > d.deadline.nanoseconds {
            discard(key)
            timedOut &+= 1
        }
    }

    private mutating func discard(_ key: Key) {
        guard let d = pending.removeValue(forKey: key) else { return }
        bytesHeld -= d.heldBytes
        let left = perSource[key.source, default: 1] - 1
        perSource[key.source] = left > 0 ? left : nil
    }

    /// Adds `r` to sorted, disjoint `ranges`, joining neighbours.
    private func insert(_ r: Range<Int>, into ranges: inout [Range<Int>]) {
        var lower = r.lowerBound, upper = r.upperBound
        var out: [Range<Int>] = []
        out.reserveCapacity(ranges.count + 1)
        var placed = false
        for x in ranges {
            if x.upperBound < lower { out.append(x); continue }
            if x.lowerBound > upper {
                if !placed { out.append(lower..<upper); placed = true }
                out.append(x)
                continue
            }
            lower = min(lower, x.lowerBound); upper = max(upper, x.upperBound)
        }
        if !placed { out.append(lower..<upper) }
        ranges = out
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
