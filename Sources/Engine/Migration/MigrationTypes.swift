import Wire

/// The steps of a migration (DESIGN §6), in order; a migration ends `spliced` or `rolledBack`.
public enum MigrationPhase: String, Sendable, Codable, CaseIterable {
    case requested
    /// Zero window toward the server and the old device; server data cached and pre-acked.
    case paused
    /// Both directions settled: the cut offsets are fixed; the old device gets nothing more.
    case oldDeviceCut = "old-device-cut"
    /// The new device's handshake with the proxy (emulating the server) completed.
    case newDeviceConnected = "new-device-connected"
    /// The new device acknowledged every cached byte.
    case cacheDrained = "cache-drained"
    /// The new device's real window went to the server; the flow is a normal splice again.
    case spliced
    /// The flow went back to the old device (no new device, or it failed, before the deadline).
    case rolledBack = "rolled-back"
    /// Neither finishing nor going back was possible: the flow was reset on every side (the
    /// new device failed after sending data, or the old device did not take the cache back).
    case aborted
}

/// Where a flow should go: the new device's address, and its source port when known.
public struct MigrationTarget: Sendable, Codable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    /// The new device's source port; nil: the first SYN from `address` to the flow's destination.
    public var port: UInt16?
    /// No SYN is claimed until `SpliceEngine.bindMigrationSourcePort` names the port: the MTR
    /// path (DESIGN §7), where the target's agent says which port it will connect from only
    /// after the cut offsets are known.
    public var awaitsPort: Bool
    public init(address: IPAddress, port: UInt16? = nil, awaitsPort: Bool = false) {
        self.address = address; self.port = port; self.awaitsPort = awaitsPort && port == nil
    }
    /// An IPv4 target.
    public init(address: IPv4Address, port: UInt16? = nil, awaitsPort: Bool = false) {
        self.init(address: .v4(address), port: port, awaitsPort: awaitsPort)
    }
    public var description: String {
        port.map { IPEndpoint(address, $0).description }
            ?? (awaitsPort ? "\(IPEndpoint(address, 0).description.dropLast(2)):(port pending)" : address.description)
    }
}

/// Why a migration was refused. Nothing changed when one of these is returned.
public enum MigrationRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownFlow(FlowID)
    case alreadyMigrating(FlowID, MigrationID)
    case notEstablished(FlowID, FlowState)
    case sameDevice(FlowID)
    case copyIncomplete(FlowID, missing: UInt64)
    case unsupported(FlowID, String)
    case unknownMigration(MigrationID)
    case tooLate(MigrationID, MigrationPhase)

    public var description: String {
        switch self {
        case .unknownFlow(let f): "flow \(f) does not exist"
        case .alreadyMigrating(let f, let m): "flow \(f) is already migrating (migration \(m))"
        case .notEstablished(let f, let s): "flow \(f) is \(s.rawValue), only established flows can migrate"
        case .sameDevice(let f): "flow \(f) is already held by that address"
        case .copyIncomplete(let f, let missing): "flow \(f): the in-flight copy lacks \(missing) bytes the device has not acknowledged (raise the per-flow cap)"
        case .unsupported(let f, let why): "flow \(f) can't be migrated: \(why)"
        case .unknownMigration(let m): "migration \(m) is not running"
        case .tooLate(let m, let phase): "migration \(m) is \(phase.rawValue): its new device is already known"
        }
    }
}

/// What a migration did, with the time of each phase (seconds after it was requested).
public struct MigrationReport: Sendable, Codable, Equatable {
    public struct PhaseTime: Sendable, Codable, Equatable {
        public var phase: MigrationPhase
        public var seconds: Double
        public init(phase: MigrationPhase, seconds: Double) { self.phase = phase; self.seconds = seconds }
    }
    public var id: MigrationID
    public var flow: FlowID
    public var oldDevice: IPEndpoint
    public var target: MigrationTarget
    public var newDevice: IPEndpoint?
    public var phase: MigrationPhase
    public var phases: [PhaseTime]
    /// Bytes of the server's stream the old device received (the rest went to the new one).
    public var cutOffsetToDevice: UInt64?
    /// Bytes of the old device's stream the server received (the new device continues after).
    public var cutOffsetToServer: UInt64?
    /// Bytes the proxy delivered from its copy and cache.
    public var bytesCached: UInt64
    public var retransmissions: Int
    public var timeouts: Int
    /// Why it rolled back, when it did.
    public var reason: String?
    public var isFinished: Bool { phase == .spliced || phase == .rolledBack || phase == .aborted }

    public init(id: MigrationID, flow: FlowID, oldDevice: IPEndpoint, target: MigrationTarget, newDevice: IPEndpoint?,
                phase: MigrationPhase, phases: [PhaseTime], cutOffsetToDevice: UInt64?, cutOffsetToServer: UInt64?,
                bytesCached: UInt64, retransmissions: Int, timeouts: Int, reason: String?) {
        self.id = id; self.flow = flow; self.oldDevice = oldDevice; self.target = target; self.newDevice = newDevice
        self.phase = phase; self.phases = phases; self.cutOffsetToDevice = cutOffsetToDevice
        self.cutOffsetToServer = cutOffsetToServer; self.bytesCached = bytesCached
        self.retransmissions = retransmissions; self.timeouts = timeouts; self.reason = reason
    }
}
