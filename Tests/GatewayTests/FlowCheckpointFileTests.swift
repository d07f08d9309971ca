import Engine
@testable import Forwarding
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
        FlowCheckpoint(id: FlowID(id), device: endpoint("10.1.0.2:\(10_000 + id % 50_000)"),
                       original: endpoint("10.2.0.2:8080"), server: endpoint("10.2.0.2:8080"),
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

extension FlowCheckpointFileTests {
    @Test("the shards' files are read as one: none is nothing to adopt; all of one layout are adopted with its seed; one missing, or of another shard or layout, is refused with the file named")
    func shardFilesReadAsOne() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let paths = [directory + "/tun0.flows.0", directory + "/tun0.flows.1"]
        let none = try FlowCheckpoints.readPrevious(setup: 7, paths: paths)
        #expect(none.previous.isEmpty && none.previousSeed == nil)

        let seed: UInt64 = 0xABCD_0000_1234
        _ = try FlowCheckpointFile(path: paths[0], setup: 7, shard: .init(index: 0, count: 2, seed: seed), flows: [flow(1)])
        #expect(throws: FlowCheckpointFileError(path: paths[1], reason: "missing, while the other shards' checkpoints are there")) {
            try FlowCheckpoints.readPrevious(setup: 7, paths: paths)
        }
        let second = try FlowCheckpointFile(path: paths[1], setup: 7, shard: .init(index: 1, count: 2, seed: seed), flows: [flow(2), flow(4)])
        let both = try FlowCheckpoints.readPrevious(setup: 7, paths: paths)
        #expect(both.previousSeed == seed && both.previousFlowCount == 3 && both.tornTails.isEmpty)
        #expect(both.previous.map { $0.flows.map(\.id.rawValue) } == [[1], [2, 4]])

        // A record cut short at the end of one file: reported, the rest adopted.
        try second.append(Array(CheckpointCodec.record(flow(6)).dropLast(5)))
        let torn = try FlowCheckpoints.readPrevious(setup: 7, paths: paths)
        #expect(torn.previousFlowCount == 3 && torn.tornTails.count == 1 && torn.tornTails[0].hasPrefix(paths[1]))

        _ = try FlowCheckpointFile(path: paths[1], setup: 7, shard: .init(index: 1, count: 2, seed: seed + 1), flows: [])
        #expect(throws: FlowCheckpointFileError.self) { try FlowCheckpoints.readPrevious(setup: 7, paths: paths) }
        _ = try FlowCheckpointFile(path: paths[1], setup: 7, shard: .init(index: 0, count: 2, seed: seed), flows: [])
        #expect(throws: FlowCheckpointFileError.self) { try FlowCheckpoints.readPrevious(setup: 7, paths: paths) }
        #expect(throws: FlowCheckpointFileError.self) { try FlowCheckpoints.readPrevious(setup: 8, paths: paths) }
    }

    @Test("a file larger than any checkpoint is refused, not cut and misread")
    func oversizedFileRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/tun0.flows.0"
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: CheckpointCodec.snapshot(setup: 7, flows: [flow(1)]))
        try handle.close()
        #expect(try FlowCheckpointFile.read(path: path, setup: 7, limit: 200)?.flows.count == 1)
        #expect(throws: FlowCheckpointFileError(path: path, reason: "larger than 50 bytes: not a checkpoint this proxy wrote")) {
            try FlowCheckpointFile.read(path: path, setup: 7, limit: 50)
        }
    }
}
