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
    /// A migration past its pause held bytes for this flow that only the process had (the
    /// server's segments it acknowledged on the device's behalf): a restart cannot deliver
    /// them, so the adopted flow is reset on both sides as each next speaks.
    public var heldByMigration = false
    /// With `heldByMigration`: that migration, and the device it was going to (port 0: not
    /// named yet), so a restart reports how it ended (`tsmp migrations`, a device polling it).
    public var migrationID: MigrationID?
    public var migrationTarget: IPEndpoint?

    public init(id: FlowID, device: IPEndpoint, original: IPEndpoint, server: IPEndpoint, natPort: UInt16,
                state: FlowState) {
        self.id = id; self.device = device; self.original = original; self.server = server
        self.natPort = natPort; self.state = state
    }
}
