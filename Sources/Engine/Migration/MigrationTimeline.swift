import Wire

/// The packets of a migration's sub-connections as the proxy saw them, from the request to the
/// end (issue "Operator experience": the tcptrace-style picture of a migration): the server's
/// data, the old and the new device's acknowledgements, the segments the proxy's emulated sender
/// delivered from its cache. Every offset counts bytes of the server's stream (0 = its first
/// byte), so both sub-connections share one axis and the cut is a line across it. Bounded:
/// past `capacity` points the rest are only counted.
public struct MigrationTimeline: Sendable, Codable, Equatable {
    public enum Series: String, Sendable, Codable, CaseIterable {
        /// Data from the server (cached and pre-acknowledged while paused).
        case serverData = "server-data"
        /// Acknowledgements of the old device (what it received).
        case oldDeviceAck = "old-device-ack"
        /// Acknowledgements of the new device.
        case newDeviceAck = "new-device-ack"
        /// Cached bytes the proxy sent to the new device (the drain).
        case proxyToNewDevice = "proxy-to-new-device"
        /// Cached bytes the proxy sent back to the old device (a rollback).
        case proxyToOldDevice = "proxy-to-old-device"
    }

    public struct Point: Sendable, Codable, Equatable {
        /// Seconds after the migration was requested.
        public var seconds: Double
        public var series: Series
        /// Offset in the server's stream: a segment's first byte, or the byte an ack asks for next.
        public var offset: UInt64
        /// Payload bytes (0 for a pure acknowledgement).
        public var length: Int
        public init(seconds: Double, series: Series, offset: UInt64, length: Int) {
            self.seconds = seconds; self.series = series; self.offset = offset; self.length = length
        }
    }

    public static let capacity = 4096
    public var points: [Point] = []
    /// Points not kept (past `capacity`).
    public var dropped = 0

    public init(points: [Point] = [], dropped: Int = 0) { self.points = points; self.dropped = dropped }

    mutating func append(_ p: Point) {
        if points.count < Self.capacity { points.append(p) } else { dropped += 1 }
    }
}

extension SpliceEngine {
    /// How many finished migrations keep their timeline.
    static let finishedTimelines = 64

    /// Notes a packet of migration `mid` (`seq` in the server's sequence space).
    func noteTimeline(_ mid: MigrationID, _ series: MigrationTimeline.Series, seq: SeqNumber, length: Int, slot: Int, now: Instant) {
        guard let m = migrations[mid], let f = table[slot: slot] else { return }
        let seconds = Double(now.nanoseconds &- m.requestedAt.nanoseconds) / 1e9
        timelines[mid, default: MigrationTimeline()].append(
            .init(seconds: seconds, series: series, offset: UInt64(f.streamStartToDevice.distance(to: seq)), length: length))
    }

    /// A finished migration's timeline stays among the last `finishedTimelines`.
    func keepFinishedTimeline(_ mid: MigrationID) {
        guard timelines[mid] != nil else { return }
        timelineOrder.append(mid)
        if timelineOrder.count > Self.finishedTimelines { timelines[timelineOrder.removeFirst()] = nil }
    }

    /// The timeline of a running or recently finished migration.
    public func migrationTimeline(_ id: MigrationID) -> MigrationTimeline? { timelines[id] }
}
