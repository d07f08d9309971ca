import Engine
import Forwarding
import Foundation
import Testing
import TestSupport
import Wire

/// The checkpoint file: snapshot, appends, atomic compaction, and what a reader finds after
/// each (a real file in a temporary directory).
@Suite struct FlowCheckpointFileTests {
    let directory: String
    init() throws {
        directory = NSTemporaryDirectory() + "tsmp-checkpoint-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func flow(_ id: UInt64) -> FlowCheckpoint {
        FlowCheckpoint(id: FlowID(id), device: IPEndpoint(endpoint("10.1.0.2:\(10_000 + id % 50_000)")),
                       original: IPEndpoint(endpoint("10.2.0.2:8080")), server: IPEndpoint(endpoint("10.2.0.2:8080")),
                       natPort: UInt16(1024 + id % 60_000), state: .established)
    }

    @Test("no file: nothing to adopt; a snapshot and appends read back as the live flows")
    func snapshotAndAppends() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tun0.flows"
        #expect(try FlowCheckpointFile.read(path: path, setup: 7) == nil)
        let file = try FlowCheckpointFile(path: path, setup: 7, flows: [flow(1), flow(2)])
        var closing = flow(2)
        closing.state = .halfClosed
        try file.append(CheckpointCodec.record(flow(3)) + CheckpointCodec.record(closing))
        try file.append(CheckpointCodec.gone(FlowID(1)))
        #expect(try FlowCheckpointFile.read(path: path, setup: 7)?.flows == [closing, flow(3)])
        // A file written under other options is refused with its path in the message.
        #expect(throws: FlowCheckpointFileError.self) { try FlowCheckpointFile.read(path: path, setup: 8) }
        do {
            _ = try FlowCheckpointFile.read(path: path, setup: 8)
        } catch {
            #expect(error.description.hasPrefix("flow checkpoint \(path): ") && error.description.contains("other options"))
        }
        file.remove()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("compaction replaces the file atomically with the live flows; appends go on after it")
    func compaction() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tun0.flows"
        let file = try FlowCheckpointFile(path: path, setup: 7)
        var live: [FlowCheckpoint] = []
        var id: UInt64 = 0
        while !file.wantsCompaction {
            id += 1
            try file.append(CheckpointCodec.record(flow(id)) + CheckpointCodec.gone(FlowID(id)))
            if id % 100 == 0 { live.append(flow(id)); try file.append(CheckpointCodec.record(flow(id))) }
        }
        let before = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        try file.compact(flows: live)
        let after = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(after < before / 10)
        #expect(!file.wantsCompaction)
        #expect(!FileManager.default.fileExists(atPath: path + ".new"))
        try file.append(CheckpointCodec.record(flow(id + 1)))
        #expect(try FlowCheckpointFile.read(path: path, setup: 7)?.flows == live + [flow(id + 1)])
    }

    @Test("a file cut inside its last record (a kill -9 inside a write) reads as the records before it, reported")
    func tornFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tun0.flows"
        let file = try FlowCheckpointFile(path: path, setup: 7, flows: [flow(1)])
        try file.append(CheckpointCodec.record(flow(2)))
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size - 5)
        try handle.close()
        let read = try #require(try FlowCheckpointFile.read(path: path, setup: 7))
        #expect(read.flows == [flow(1)])
        #expect(read.tornTail?.description.contains("cut short") == true)
    }
}
