import PacketIO
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for the PacketIO tests: unique temporary paths, whole-file writes, and a builder
/// of pcap file bytes with any link type, byte order, precision and (broken) record.

/// A path under /tmp no other test (or run) uses; the file is removed by `removeTemporary`.
func temporaryPath(_ name: String) -> String {
    "/tmp/tsmp-packetio-test-\(UInt64.random(in: 0 ... .max))-\(name)"
}

func removeTemporary(_ path: String) { try? Syscall.unlink(path) }

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = try Syscall.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC)
    defer { try? Syscall.close(fd) }
    try bytes.withUnsafeBytes { try Syscall.writeAll(fd, $0) }
}

/// Reads every packet of `reader` with batches of `capacity`.
func readAll(_ reader: PcapFileReader, capacity: Int = 4, maxPacket: Int = 65_535)
    throws -> [(bytes: [UInt8], time: Instant, direction: PacketDirection)] {
    var out: [(bytes: [UInt8], time: Instant, direction: PacketDirection)] = []
    let batch = PacketBatch(capacity: capacity, maxPacket: maxPacket)
    var rounds = 0
    while !reader.isExhausted {
        batch.removeAll()
        _ = try reader.read(into: batch)
        for i in 0..<batch.count {
            out.append((batch.bytes(i), batch.timestamps[i], batch.directions[i]))
        }
        rounds += 1
        precondition(rounds < 100_000, "reader never exhausted")
    }
    return out
}

/// Classic pcap bytes, built record by record.
struct PcapBytes {
    var bytes: [UInt8] = []
    let bigEndian: Bool

    init(linkType: UInt32, nanoseconds: Bool = true, bigEndian: Bool = false, snapLength: UInt32 = 262_144) {
        self.bigEndian = bigEndian
        put32(nanoseconds ? 0xA1B2_3C4D : 0xA1B2_C3D4)
        put16(2); put16(4)
        put32(0); put32(0)
        put32(snapLength)
        put32(linkType)
    }

    /// A record holding `frame` (`originalLength` defaults to the frame's length).
    mutating func add(_ frame: [UInt8], seconds: UInt32 = 1, fraction: UInt32 = 0, originalLength: UInt32? = nil) {
        put32(seconds); put32(fraction)
        put32(UInt32(frame.count)); put32(originalLength ?? UInt32(frame.count))
        bytes += frame
    }

    mutating func put16(_ v: UInt16) {
        let b = [UInt8(v >> 8), UInt8(v & 0xff)]
        bytes += bigEndian ? b : b.reversed()
    }

    mutating func put32(_ v: UInt32) {
        let b = [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        bytes += bigEndian ? b : b.reversed()
    }
}

/// A minimal IPv6 packet (next header 59, "no next header") with `payload`.
func ipv6Packet(payload: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
    var p: [UInt8] = [0x60, 0, 0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xff), 59, 64]
    p += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
    p += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
    return p + payload
}
