import Foundation
import PacketIO
import Wire

/// Reads the committed captures (scripts/capture-media-fixtures) with PacketIO's pcap reader
/// and Wire's IPv4/TCP views: UDP datagrams with their ports, and each TCP direction's bytes
/// in sequence order.
enum CapturedPackets {
    struct Datagram {
        let sourcePort: UInt16
        let destinationPort: UInt16
        let payload: [UInt8]
    }

    struct Segment {
        let sourcePort: UInt16
        let destinationPort: UInt16
        let seq: UInt32
        let payload: [UInt8]
    }

    static func path(_ file: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(file)").path
    }

    /// Every IPv4 packet of a capture, in capture order.
    static func ipPackets(_ file: String) throws -> [[UInt8]] {
        try PcapFileReader(path: path(file)).readAll()
    }

    static func udp(_ file: String) throws -> [Datagram] {
        try ipPackets(file).compactMap { bytes in
            var b = bytes
            return b.withUnsafeMutableBytes { buf -> Datagram? in
                guard let ip = try? IPv4Packet(validating: buf), ip.protocolNumber == 17, ip.payload.count >= 8 else { return nil }
                let u = ip.payload
                return Datagram(sourcePort: UInt16(u[0]) << 8 | UInt16(u[1]), destinationPort: UInt16(u[2]) << 8 | UInt16(u[3]),
                                payload: Array(u[8...]))
            }
        }
    }

    static func tcp(_ file: String) throws -> [Segment] {
        try ipPackets(file).compactMap { bytes in
            var b = bytes
            return b.withUnsafeMutableBytes { buf -> Segment? in
                guard let ip = try? IPv4Packet(validating: buf), ip.protocolNumber == 6,
                      let tcp = try? TCPSegment(validating: ip.payload) else { return nil }
                return Segment(sourcePort: tcp.sourcePort, destinationPort: tcp.destinationPort,
                               seq: tcp.seq.rawValue, payload: Array(tcp.payload))
            }
        }
    }

    /// The bytes sent toward `port` (to: true) or from it, in sequence order, without repeats.
    static func tcpStream(_ file: String, port: UInt16, toPort: Bool) throws -> [UInt8] {
        let segments = try tcp(file).filter { (toPort ? $0.destinationPort : $0.sourcePort) == port && !$0.payload.isEmpty }
        guard let first = segments.map(\.seq).min() else { return [] }
        var out: [UInt8] = []
        for s in segments.sorted(by: { $0.seq &- first < $1.seq &- first }) {
            let offset = Int(s.seq &- first)
            if offset + s.payload.count <= out.count { continue }
            guard offset <= out.count else { break }
            out += s.payload[(out.count - offset)...]
        }
        return out
    }
}

/// SplitMix64, for reproducible property tests (seed printed on failure).
struct SplitMix: RandomNumberGenerator {
    let seed: UInt64
    private var state: UInt64
    init(seed: UInt64) { self.seed = seed; state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// The bytes of a text with "\r\n" line ends (fixtures written as Swift strings with "\n").
func crlf(_ text: String) -> [UInt8] {
    Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
}
