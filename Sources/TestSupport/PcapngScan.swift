import Foundation

/// A strict reading of a little-endian pcapng file for the tests of the capture writer
/// (draft-ietf-opsawg-pcapng): every block's leading and trailing total lengths must agree and
/// be multiples of 4 (§3.1), every option must fit its block (§3.5); the Enhanced Packet
/// Blocks' frames and comments (`opt_comment`) are returned in file order. Independent of the
/// writer's code, so a test can hold the writer to the format.
public struct PcapngScan: Equatable, Sendable {
    public struct Packet: Equatable, Sendable {
        public var timestampNanoseconds: UInt64
        public var frame: [UInt8]
        public var originalLength: Int
        public var comments: [String]
    }

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Block types in file order (0x0A0D0D0A, 1, 6, ...).
    public var blockTypes: [UInt32] = []
    /// The interface's link type and `if_tsresol` (nil when absent).
    public var linkType: UInt16?
    public var timestampResolution: UInt8?
    public var packets: [Packet] = []

    public init(path: String) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        try self.init(bytes: bytes)
    }

    public init(bytes: [UInt8]) throws {
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
        var at = 0
        while at < bytes.count {
            guard at + 12 <= bytes.count else { throw Malformed(description: "a block header is cut off at \(at)") }
            let type = u32(at), length = Int(u32(at + 4))
            guard length >= 12, length % 4 == 0, at + length <= bytes.count else {
                throw Malformed(description: "block at \(at) has length \(length)")
            }
            guard Int(u32(at + length - 4)) == length else { throw Malformed(description: "block at \(at): trailing length differs") }
            if blockTypes.isEmpty {
                guard type == 0x0A0D_0D0A, u32(at + 8) == 0x1A2B_3C4D else { throw Malformed(description: "no section header first") }
            }
            blockTypes.append(type)
            let body = at + 8, end = at + length - 4
            switch type {
            case 1:
                linkType = u16(body)
                for (code, value) in try Self.options(bytes, from: body + 8, to: end) where code == 9 { timestampResolution = value.first }
            case 6:
                let captured = Int(u32(body + 12))
                let dataEnd = body + 20 + captured
                guard dataEnd <= end else { throw Malformed(description: "packet at \(at) is longer than its block") }
                let comments = try Self.options(bytes, from: body + 20 + ((captured + 3) & ~3), to: end)
                    .filter { $0.code == 1 }.map { String(decoding: $0.value, as: UTF8.self) }
                packets.append(Packet(timestampNanoseconds: UInt64(u32(body + 4)) << 32 | UInt64(u32(body + 8)),
                                      frame: Array(bytes[(body + 20)..<dataEnd]), originalLength: Int(u32(body + 16)),
                                      comments: comments))
            default:
                break
            }
            at += length
        }
    }

    /// The options between `from` and `to`, up to `opt_endofopt` (none when there is no room).
    static func options(_ bytes: [UInt8], from: Int, to: Int) throws -> [(code: UInt16, value: [UInt8])] {
        var out: [(code: UInt16, value: [UInt8])] = []
        var at = from
        while at + 4 <= to {
            let code = UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
            let length = Int(UInt16(bytes[at + 2]) | UInt16(bytes[at + 3]) << 8)
            if code == 0 { return out }
            guard at + 4 + length <= to else { throw Malformed(description: "option \(code) at \(at) runs past its block") }
            out.append((code, Array(bytes[(at + 4)..<(at + 4 + length)])))
            at += 4 + ((length + 3) & ~3)
        }
        guard at == to else { throw Malformed(description: "options end at \(at), their block at \(to)") }
        return out
    }
}

/// tshark (package tshark), when installed: what Wireshark's own reader makes of a capture.
public enum Tshark {
    public static let path = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `tshark -r FILE -T fields -e FIELD...`: one line per packet, tab-separated fields; nil
    /// with tshark's message when it refused the file.
    public static func fields(_ file: String, _ fields: [String]) async throws -> Result<[String], Malformed> {
        try await withCheckedThrowingContinuation { c in
            DispatchQueue.global().async {
                c.resume(with: Result { () throws -> Result<[String], Malformed> in
                    guard let path else { throw CocoaError(.fileNoSuchFile) }
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: path)
                    process.arguments = ["-n", "-r", file, "-T", "fields"] + fields.flatMap { ["-e", $0] }
                    let output = Pipe(), errors = Pipe()
                    process.standardOutput = output
                    process.standardError = errors
                    try process.run()
                    let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                    let complaint = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                    process.waitUntilExit()
                    guard process.terminationStatus == 0 else { return .failure(Malformed(description: complaint)) }
                    return .success(said.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init))
                })
            }
        }
    }

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }
}
