/// Engine: the sans-IO splice engine (DESIGN §5-6; TSMP draft §4.2-4.3). `SpliceEngine` owns
/// the flow table, NAT ports, sequence and timestamp remapping, the in-flight copies and the
/// migrations (`Migration/`: one `Migration` value per migration, its phase an enum), and
/// each flow's durable facts for a restart (`Checkpoint/`: `FlowCheckpoint`, the record format
/// `CheckpointCodec`, `adopt`; the file is Forwarding's `FlowCheckpointFile`).
///
/// Invariants of the module:
/// - It imports Wire and Logging only: no I/O, no threads, no clock. The caller passes each
///   batch with `now`, writes what stays in the batch and what the engine put in `generated`,
///   and calls `expire(now:)` and `runMigrationTimers(now:generated:)` periodically.
/// - What the caller must act on besides packets is output too: `takeEvents()` after each
///   call (`EngineEvent`: kernel-path enter/leave, the SYN a migration expects or no longer
///   awaits, released 4-tuples). Nobody polls the engine for these.
/// - Every packet read is forwarded (rewritten in place), passed through unchanged, consumed
///   by a migration (the proxy answers for the other side) or dropped with a counted
///   `DropReason`.
/// - Untrusted bytes never trap: packets are parsed through Wire's checked views.
/// - Plain splicing does not call into `Migration/`: it only hands over a migrating flow's
///   packets, and an opening SYN of no flow (it may be a migration's new device).
/// - One engine is used by one thread at a time (its shard's data-plane loop).
public enum EngineModule {}
