import Wire

/// A flow's durable facts: what a restarted proxy needs to go on forwarding it with the same
/// NAT port and the same sequence and timestamp offsets (issue "Survive a proxy restart",
/// item 1). Written per flow event (established, spliced by a migration, handed to or taken
/// from the kernel, FIN, gone), never per packet.
///
/// Per-packet state is not here: next sequence numbers, acks, windows and the in-flight copy
/// are learned again from the next segments, as when a flow comes back from the kernel path
/// (`KernelPathState.resyncing`).
///
/// Endpoints carry their family, so the format holds IPv6 flows without a new version.
public struct FlowCheckpoint: Sendable, Equatable {
    public var id: FlowID
    public var device: IPEndpoint
    /// Whom the device believes it talks to (the server, or the service's address).
    public var original: IPEndpoint
    public var server: IPEndpoint
    public var natPort: UInt16
    public var state: FlowState
    /// Added to what the device sends / what the server sends (`DirectionState.seqOffset`).
    public var seqOffsetToServer = SequenceOffset()
    public var seqOffsetToDevice = SequenceOffset()
    public var tsOffsetToServer: UInt32 = 0
    public var tsOffsetToDevice: UInt32 = 0
    public var streamStartToServer = SeqNumber(0)
    public var streamStartToDevice = SeqNumber(0)
    /// Each direction's FIN, once seen: a FIN is a flow event, and the close must go on after a restart.
    public var finToServer: SeqNumber?
    public var finToDevice: SeqNumber?
    public var deviceSyn = SynOptions()
    public var serverSyn = SynOptions()
    public var serverViewOfDeviceShift: UInt8 = 0
    public var deviceShiftOverride: UInt8?
    public var deviceViewOfServerShift: UInt8?
    public var deviceMSS: UInt16?
    public var deviceLacksSACK = false
    public var deviceLacksTimestamps = false
    public var deviceLacksECN = false
    /// The kernel forwarded the flow (its rule is in the kernel-path table, which outlives the process).
    public var inKernel = false
    /// A migration past its pause held bytes for this flow: the server's segments it
    /// acknowledged on the device's behalf (DESIGN §6 step 2). A restart takes the flow back
    /// to its old device with them (`freeze`, `held`); without them (a format 1 checkpoint, or
    /// the new device had already sent on to the server) the flow is reset on both sides.
    public var heldByMigration = false
    /// With `heldByMigration`: that migration, and the device it was going to (port 0: not
    /// named yet), so a restart reports how it ended (`tsmp migrations`, a device polling it).
    /// Without it: a migration still waiting for the flow's state (just back from the kernel
    /// path), which held nothing: a restart reports it rolled back, the flow untouched.
    public var migrationID: MigrationID?
    public var migrationTarget: IPEndpoint?
    /// With `heldByMigration`: what the pause fixed (format 2 on).
    public var freeze: CheckpointedFreeze?
    /// With `heldByMigration`: the bytes the proxy held (its in-flight copy and cache). Filled
    /// in a snapshot (`SpliceEngine.checkpoints()`) and when read back; a per-event record
    /// leaves it nil, its bytes follow as `held` records.
    public var held: HeldBytes?

    public init(id: FlowID, device: IPEndpoint, original: IPEndpoint, server: IPEndpoint, natPort: UInt16,
                state: FlowState) {
        self.id = id; self.device = device; self.original = original; self.server = server
        self.natPort = natPort; self.state = state
    }
}

/// What a migration's pause fixed (DESIGN §6 step 1), kept so a restarted proxy can take the
/// flow back to its old device: the ends of what went each way before the pause, and whether
/// a new device had already taken over part of the stream.
public struct CheckpointedFreeze: Sendable, Equatable {
    /// Server-space end of what was forwarded to the old device before the pause.
    public var forwardedToDeviceEnd: SeqNumber
    /// Old-device-space end of what was forwarded to the server before the pause.
    public var forwardedToServerEnd: SeqNumber
    /// The highest ack the server had sent for the device side's data, in its view.
    public var serverAckServerView: SeqNumber
    /// The last TSval the server saw from the device side (RFC 7323).
    public var lastTSvalToServer: UInt32?
    /// The server's FIN, when it is the last thing the cache holds.
    public var serverFinSeq: SeqNumber?
    /// The new device whose SYN the migration had claimed, if any: after a restart its
    /// sub-connection is refused (nothing continues it).
    public var newDevice: IPEndpoint?
    /// The new device had sent bytes on to the server: the server's stream from the device
    /// side continues the new device's, so the old device can't take the flow back.
    public var newDeviceSentData = false

    public init(forwardedToDeviceEnd: SeqNumber, forwardedToServerEnd: SeqNumber, serverAckServerView: SeqNumber) {
        self.forwardedToDeviceEnd = forwardedToDeviceEnd
        self.forwardedToServerEnd = forwardedToServerEnd
        self.serverAckServerView = serverAckServerView
    }
}

/// A contiguous run of the server's stream, from `start` (server space).
public struct HeldBytes: Sendable, Equatable {
    public var start: SeqNumber
    public var bytes: [UInt8]
    public init(start: SeqNumber, bytes: [UInt8]) { self.start = start; self.bytes = bytes }
    public var end: SeqNumber { start + UInt32(truncatingIfNeeded: bytes.count) }
}
