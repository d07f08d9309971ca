import Engine
import Forwarding
import Foundation
import Logging
import PacketIO
import Testing
import Wire

/// Replays of real lab traffic recorded by `scripts/capture-fixtures` (the proxy's own
/// `--capture`: packets it read marked inbound, packets it wrote marked outbound).
///
/// Two checks per capture:
/// - running the inbound packets through a fresh engine reproduces, byte for byte and in
///   order, the outbound packets the live proxy wrote: the offline engine is the one that ran;
/// - the output equals the committed `NAME.expected.pcap` (what `tsmp replay --out` wrote
///   when the fixture was recorded), so any change in what the engine emits shows up here.
@Suite("Replay of recorded lab traffic")
struct ReplayFixtureTests {
    struct Fixture: CustomTestStringConvertible, Sendable {
        let name: String
        let port: UInt16
        var testDescription: String { name }
    }

    static let fixtures = [
        Fixture(name: "curl-download", port: 8080),
        Fixture(name: "iperf3", port: 5201),
        Fixture(name: "socat-chat", port: 7000),
    ]

    static func path(_ file: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(file)").path
    }

    /// Every packet of a capture with its direction.
    static func records(_ path: String) throws -> [(bytes: [UInt8], direction: PacketDirection)] {
        let reader = try PcapFileReader(path: path)
        let batch = PacketBatch(capacity: 64)
        var out: [(bytes: [UInt8], direction: PacketDirection)] = []
        while !reader.isExhausted {
            batch.removeAll()
            _ = try reader.read(into: batch)
            for i in 0..<batch.count { out.append((batch.bytes(i), batch.directions[i])) }
        }
        return out
    }

    static func engine(port: UInt16) -> SpliceEngine {
        SpliceEngine(config: EngineConfig(nat: IPv4Address(10, 2, 0, 1), intercepts: [PortRange(port, port)]),
                     logger: Logger(label: "replay-test"))
    }

    @Test("replaying the input reproduces what the live proxy wrote", arguments: fixtures)
    func reproducesLiveOutput(_ fixture: Fixture) throws {
        let records = try Self.records(Self.path("\(fixture.name).pcap"))
        let inbound = records.filter { $0.direction == .inbound }
        let liveOutput = records.filter { $0.direction == .outbound }.map(\.bytes)
        #expect(inbound.count > 50, "the fixture holds real traffic")
        let output = MemoryDevice()
        _ = try Replay(engine: Self.engine(port: fixture.port)).run(input: Self.source(inbound.map(\.bytes)), output: output)
        let replayed = output.written.map(\.bytes)
        #expect(replayed.count == liveOutput.count)
        for (i, (a, b)) in zip(replayed, liveOutput).enumerated() where a != b {
            Issue.record("packet \(i) differs from what the live proxy wrote")
            break
        }
    }

    @Test("the output equals the committed expected capture", arguments: fixtures)
    func matchesExpectedOutput(_ fixture: Fixture) throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tsmp-replay-\(fixture.name)-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let writer = try PcapFileWriter(path: out, linkType: .raw)
        let report = try Replay(engine: Self.engine(port: fixture.port))
            .run(input: try PcapFileReader(path: Self.path("\(fixture.name).pcap")), output: writer)
        try writer.close()
        #expect(report.status?.drops.isEmpty == true)
        let expected = try Data(contentsOf: URL(fileURLWithPath: Self.path("\(fixture.name).expected.pcap")))
        let actual = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(actual == expected, "regenerate with: tsmp replay Tests/EngineTests/Fixtures/\(fixture.name).pcap --nat 10.2.0.1 --intercept tcp/\(fixture.port) --out Tests/EngineTests/Fixtures/\(fixture.name).expected.pcap")
    }

    @Test("every flow of the capture is closed and leaves the table after expiry", arguments: fixtures)
    func tableEmptiesAfterwards(_ fixture: Fixture) throws {
        let engine = Self.engine(port: fixture.port)
        let reader = try PcapFileReader(path: Self.path("\(fixture.name).pcap"))
        let report = try Replay(engine: engine).run(input: reader, output: nil)
        #expect((report.status?.flowsCreated ?? 0) >= 1)
        let last = try Self.lastTimestamp(Self.path("\(fixture.name).pcap"))
        engine.expireAll(now: Instant(nanoseconds: last.nanoseconds + 8_000 * 1_000_000_000))
        #expect(engine.flowCount == 0)
        #expect(engine.natPortsInUse == 0)
        #expect(engine.inFlightStorageBytes == 0)
    }

    static func lastTimestamp(_ path: String) throws -> Instant {
        let reader = try PcapFileReader(path: path)
        let batch = PacketBatch(capacity: 64)
        var last = Instant(nanoseconds: 0)
        while !reader.isExhausted {
            batch.removeAll()
            _ = try reader.read(into: batch)
            for i in 0..<batch.count { last = max(last, batch.timestamps[i]) }
        }
        return last
    }

    static func source(_ packets: [[UInt8]]) -> MemoryDevice {
        let device = MemoryDevice(isFinite: true)
        for p in packets { device.enqueue(p) }
        return device
    }
}
