import Engine
import Logging

/// One proxy's flow checkpoint (issue "Survive a proxy restart"): a `FlowCheckpointFile` per
/// shard, each written only by its shard's loop, so no lock and no cross-thread ordering is
/// needed; their headers carry the shard layout's seed, which a restart takes over.
public struct FlowCheckpoints: Sendable {
    /// The fingerprint of the options the flows depend on (`EngineConfig.checkpointSetup`).
    public let setup: UInt64
    /// One file per shard, in shard order.
    public let paths: [String]
    /// What a previous proxy left, per shard (empty: nothing to adopt).
    public let previous: [CheckpointCodec.Contents]

    public init(setup: UInt64, paths: [String], previous: [CheckpointCodec.Contents] = []) {
        self.setup = setup; self.paths = paths; self.previous = previous
    }

    /// The same, with each shard's flows passed through `change` (the kernel path's reconciliation).
    public func adjusted(_ change: (inout [FlowCheckpoint]) -> Void) -> FlowCheckpoints {
        var previous = self.previous
        for i in previous.indices { change(&previous[i].flows) }
        return FlowCheckpoints(setup: setup, paths: paths, previous: previous)
    }

    /// The seed the previous proxy's layout used, when there is one to take over.
    public var previousSeed: UInt64? { previous.first?.shard.seed }

    /// Flows in the previous checkpoint.
    public var previousFlowCount: Int { previous.reduce(0) { $0 + $1.flows.count } }

    /// Reads what a previous proxy left at `paths` (one per shard), checked as one: every file
    /// there, each from its own shard of the same layout, all under `setup`. No file at all:
    /// nothing to adopt. Anything else that does not fit throws, with the file and the reason;
    /// a last record cut short is only reported (`tornTails`), its flow stays as before it.
    public static func readPrevious(setup: UInt64, paths: [String]) throws(FlowCheckpointFileError) -> FlowCheckpoints {
        var contents: [CheckpointCodec.Contents] = []
        var missing: [String] = []
        for path in paths {
            if let c = try FlowCheckpointFile.read(path: path, setup: setup) { contents.append(c) } else { missing.append(path) }
        }
        if contents.isEmpty { return FlowCheckpoints(setup: setup, paths: paths) }
        if let first = missing.first {
            throw FlowCheckpointFileError(path: first, reason: "missing, while the other shards' checkpoints are there")
        }
        let seed = contents[0].shard.seed
        for (i, c) in contents.enumerated() where c.shard.index != i || c.shard.count != paths.count || c.shard.seed != seed {
            throw FlowCheckpointFileError(path: paths[i], reason: "written by shard \(c.shard.index) of \(c.shard.count), not by shard \(i) of \(paths.count) of the same layout")
        }
        return FlowCheckpoints(setup: setup, paths: paths, previous: contents)
    }

    /// The last records cut short (a write the stop interrupted), one line each.
    public var tornTails: [String] {
        zip(paths, previous).compactMap { path, c in c.tornTail.map { "\(path): \($0)" } }
    }
}
