/// Forwarding: the data plane (DESIGN §2, §4), the threads that run the sans-IO engine on
/// real devices. It owns:
/// - the loops: `DataPlane`, one thread per TUN queue owning one `SpliceEngine` shard (read a
///   batch, let the engine rewrite it, write it, run timers and expiry), and
///   `ShardedDataPlane`, which builds one loop per queue and merges their answers;
/// - packets between shards: `ShardPeers` (where a packet belongs) and `ShardRegistry` (the
///   4-tuples that moved, and the new-device SYNs migrations wait for), fed by the engines'
///   events;
/// - the kernel path at run time: `KernelPath` (the table's sets and counters) and
///   `KernelPathInstaller`, which applies the engines' hand-overs on a serial queue of its own;
/// - `EngineAccess`, the only way in for the endpoints, with its answers (`FlowListing`,
///   `MigrationStartResult`, `EventBatch`); captures (`CaptureRecorder`); offline `Replay`.
///
/// Invariants of the module:
/// - Only a shard's loop thread touches its engine; everyone else queues a closure
///   (`perform`, `enqueue`) that the loop runs between batches. No lock is held while an
///   engine runs, and the registry never calls an engine.
/// - Nothing blocking runs on a packet thread: nftables transactions and counter reads go to
///   the installer's queue, and their outcome comes back as a command.
/// - Every batch read is written, dropped by the engine with a reason, or handed to its owner
///   shard before the next read; `stop()` ends a loop within one poll timeout.
/// - No HTTP, no JSON endpoints, no metrics exposition: those are the service's (Gateway).
public enum ForwardingModule {}
