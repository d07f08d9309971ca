import Media

/// A state machine held by reference, so a test can call its mutating `handle` inside
/// `#expect(...)` (the macro's closures cannot mutate a local struct). Properties read through.
@dynamicMemberLookup
final class Driven<Machine> {
    var machine: Machine
    init(_ machine: Machine) { self.machine = machine }
    subscript<Value>(dynamicMember path: KeyPath<Machine, Value>) -> Value { machine[keyPath: path] }
}

extension Driven where Machine == MediaMigration {
    func handle(_ input: MediaMigrationInput, now: MediaTime) -> [MediaMigrationAction] { machine.handle(input, now: now) }
}

extension Driven where Machine == LossMonitor {
    func handle(report: RTCPReportBlock, now: MediaTime) -> [LossMonitorEvent] { machine.handle(report: report, now: now) }
    func tick(now: MediaTime) -> [LossMonitorEvent] { machine.tick(now: now) }
}

extension Driven where Machine == GOPBoundaryDetector {
    func observe(packet: [UInt8]) -> Bool { machine.observe(packet: packet) }
}

extension Driven where Machine == RTSPSessionTracker {
    func handle(_ input: RTSPSessionTracker.Input, now: MediaTime) -> [RTSPSessionEvent] { machine.handle(input, now: now) }
}
