import Engine
import Gateway
import Testing
import TestSupport
import Wire

/// Several flows to one destination moved in one request (issue 11): the new device opens one
/// connection per flow to the same server:port, back to back, and its SYNs arrive on any queue.
/// Each SYN must go to exactly one waiting migration, whichever shard runs it.
extension ShardedDataPlaneTests {
    @Test("50 migrations to one device and one server:port: 50 SYNs on alternating queues are all claimed, none becomes a new connection",
          arguments: [1, 2])
    func manyMigrationsToOneDestination(shards: Int) async throws {
        let lab = try Lab(shards: shards)
        let laptop = address("10.1.0.2"), phone = address("10.3.0.2")
        let count = 50
        // Every laptop SYN first, then each flow's handshake (the NAT side is told by the SYN-ACK's answer).
        var natSides: [IPEndpoint: IPEndpoint] = [:]
        for i in 0..<count {
            let device = IPEndpoint(laptop, UInt16(40000 + i))
            lab.queues[i % shards].enqueue(tcp4(src: device, dst: Self.server, flags: .syn, seq: 1000, options: [.maximumSegmentSize(1460)]))
        }
        for _ in 0..<300 {
            let syns = lab.queues.flatMap(\.written).filter { $0.flags == .syn && $0.destination == Self.server }
            if syns.count == count { for syn in syns { natSides[syn.source] = syn.source }; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(natSides.count == count)
        for nat in natSides.keys {
            let owner = lab.plane.layout.shard(ofNATPort: nat.port) ?? 0
            lab.queues[owner].enqueue(tcp4(src: Self.server, dst: nat, flags: [.syn, .ack], seq: 5000, ack: 1001,
                                           options: [.maximumSegmentSize(1460)]))
        }
        var answered: [IPEndpoint] = []
        for _ in 0..<300 {
            answered = lab.queues.flatMap(\.written).filter { $0.flags == [.syn, .ack] && $0.destination.address == .v4(laptop) }.map(\.destination)
            if answered.count == count { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        for (i, device) in answered.enumerated() {
            lab.queues[i % shards].enqueue(tcp4(src: device, dst: Self.server, flags: .ack, seq: 1001, ack: 5001))
        }
        try await Task.sleep(for: .milliseconds(200))
        let flows = await lab.plane.listing().flows
        #expect(flows.count == count)
        if shards > 1 { #expect(Set(flows.map { lab.plane.layout.shard(of: $0.id) }).count == shards) }

        let started = await lab.plane.startMigrations(flows.map(\.id), to: MigrationTarget(address: phone), deadline: .seconds(10))
        let ids = started.compactMap(\.migration)
        #expect(ids.count == count, "refused: \(started.compactMap(\.error))")

        // The phone connects once per flow, to the same server:port, its SYNs read on alternating queues.
        let phonePorts = (0..<count).map { UInt16(50000 + $0) }
        for (i, port) in phonePorts.enumerated() {
            lab.queues[i % shards].enqueue(tcp4(src: IPEndpoint(phone, port), dst: Self.server, flags: .syn, seq: 77_000,
                                                options: [.maximumSegmentSize(1460)]))
        }
        var synAcks: [UInt16: DecodedTCP4] = [:]
        for _ in 0..<300 where synAcks.count < count {
            for q in lab.queues {
                for p in q.written where p.flags == [.syn, .ack] && p.destination.address == .v4(phone) { synAcks[p.destination.port] = p }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(synAcks.count == count, "the proxy answered \(synAcks.count) of the phone's \(count) SYNs")
        for (port, synAck) in synAcks {
            lab.queues[Int(port) % shards].enqueue(tcp4(src: IPEndpoint(phone, port), dst: Self.server, flags: .ack, seq: 77_001,
                                                        ack: synAck.seq.rawValue &+ 1))
        }
        var reports: [MigrationReport] = []
        for _ in 0..<300 {
            reports = await lab.plane.reports(ids)
            if reports.count == count && reports.allSatisfy({ $0.phase == .spliced }) { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let status = await lab.plane.engineStatus()
        let towardServer = lab.queues.flatMap(\.written).filter { $0.flags == .syn && $0.destination == Self.server }
        await lab.stop()
        let notSpliced = reports.filter { $0.phase != .spliced }.map { "\($0.id): \($0.phase) \($0.reason ?? "")" }
        #expect(reports.count == count && notSpliced.isEmpty, "not spliced: \(notSpliced)")
        #expect(Set(reports.compactMap(\.newDevice?.port)) == Set(phonePorts))
        // No SYN of the phone went on to the server as a new connection.
        #expect(towardServer.count == count && status.flowsCreated == UInt64(count))
    }
}
