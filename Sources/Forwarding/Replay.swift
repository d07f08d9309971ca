import Engine
import PacketIO
import Wire

/// Runs recorded packets through the engine offline (`tsmp replay`): the capture's own
/// timestamps are the engine's clock, packets the capture marks as written by an engine
/// (`.outbound`, e.g. from `tsmp proxy --capture`) are skipped so only the input is replayed,
/// and what the engine would emit goes to `output`.
///
/// Deterministic: the same input gives the same output byte for byte (NAT ports and flow
/// ids are allocated in order, the clock is the file's).
public struct Replay {
    public struct Report: Sendable, Codable, Equatable {
        public var packetsReplayed = 0
        public var packetsSkippedAsOutbound = 0
        public var packetsEmitted = 0
        public var status: EngineStatus?
        public var flowsLeft = 0
    }

    public let engine: SpliceEngine
    public init(engine: SpliceEngine) { self.engine = engine }

    public func run(input: any PacketDevice, output: (any PacketDevice)?) throws(SystemError) -> Report {
        var report = Report()
        let batch = PacketBatch(capacity: 64)
        let generated = PacketBatch(capacity: 128, maxPacket: 2048)
        var clock = Instant(nanoseconds: 0)
        var lastExpiry: Instant?
        while !input.isExhausted {
            batch.removeAll()
            let n = try input.read(into: batch)
            if n == 0 { if input.isExhausted { break } else { continue } }
            for i in 0..<batch.count {
                if batch.directions[i] == .outbound {
                    batch.markDropped(i)
                    report.packetsSkippedAsOutbound += 1
                    continue
                }
                clock = Swift.max(clock, batch.timestamps[i]) // a capture's clock may step back
                generated.removeAll()
                report.packetsReplayed += 1
                switch engine.process(batch.packet(i), now: clock, generated: generated) {
                case .drop, .consumed: // nothing to write (a consumed packet is answered by the proxy)
                    batch.markDropped(i)
                case .forward, .passThrough:
                    report.packetsEmitted += 1
                    if let output { _ = try output.write(batch, i..<(i + 1)) }
                }
                if generated.count > 0 {
                    report.packetsEmitted += generated.count
                    for g in 0..<generated.count { generated.timestamps[g] = clock }
                    if let output { _ = try output.write(generated, 0..<generated.count) }
                }
                if lastExpiry == nil { lastExpiry = clock }
                if clock.nanoseconds &- lastExpiry!.nanoseconds >= 100_000_000 {
                    engine.expire(now: clock)
                    lastExpiry = clock
                }
            }
        }
        report.status = engine.status()
        report.flowsLeft = engine.flowCount
        return report
    }
}
