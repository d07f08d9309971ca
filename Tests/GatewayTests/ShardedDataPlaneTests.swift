import Engine
import Forwarding
import Foundation
import Gateway
import Logging
import PacketIO
import Testing
import TestSupport
import Wire

/// A queue of a multi-queue device in memory, safe to feed from the test while its loop runs:
/// its eventfd wakes the loop when a packet is queued.
final class QueueDevice: PacketDevice, @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [[UInt8]] = []
    private var out: [[UInt8]] = []
    private let fd: Int32

    init() throws { fd = try Syscall.eventfd(initialValue: 0, nonBlocking: true) }
    deinit { try? Syscall.close(fd) }

    func enqueue(_ bytes: [UInt8]) {
        lock.withLock { queue.append(bytes) }
        _ = try? Syscall.eventfdWrite(fd)
    }

    var written: [DecodedTCP4] { lock.withLock { out }.compactMap { try? DecodedTCP4($0) } }

    var pollDescriptor: Int32? { fd }
    var isExhausted: Bool { false }

    func read(into batch: PacketBatch) throws(SystemError) -> Int {
        _ = try? Syscall.eventfdRead(fd)
        return lock.withLock {
            var n = 0
            while !queue.isEmpty && !batch.isFull {
                batch.append(queue.removeFirst())
                n += 1
            }
            if !queue.isEmpty { _ = try? Syscall.eventfdWrite(fd) }
            return n
        }
    }

    func write(_ batch: PacketBatch, _ range: Range<Int>) throws(SystemError) -> Int {
        lock.withLock { for i in range where !batch.dropped[i] { out.append(batch.bytes(i)) } }
        return range.count
    }
}

/// Several engine shards on their own threads with in-memory queues (no root): packets read on
/// the wrong queue reach their flow's shard, a migration's new device may arrive on any queue,
/// and the control calls reach the shard an id names.
@Suite("Sharded data plane (multi-queue)")
struct ShardedDataPlaneTests {
    static let server = endpoint("10.2.0.2:8080")
    static let nat = address("10.2.0.1")

    final class Lab: @unchecked Sendable {
        let queues: [QueueDevice]
        let plane: ShardedDataPlane

        init(shards: Int) throws {
            queues = try (0..<shards).map { _ in try QueueDevice() }
            plane = try ShardedDataPlane(config: EngineConfig(nat: ShardedDataPlaneTests.nat, intercepts: [PortRange(8080, 8080)]),
                                         queues: queues.map { ($0, $0) }, logger: Logger(label: "test"))
            plane.start()
        }

        func stop() async {
            plane.stop()
            await plane.waitUntilStopped()
        }

        /// A device port (from `base` up) whose 4-tuple to the server hashes to `shard`.
        func port(hashingTo shard: Int, from device: IPv4Address, base: UInt16) -> UInt16 {
            var p = base
            while plane.layout.shard(device: IPEndpoint(device, p), original: ShardedDataPlaneTests.server) != shard { p += 1 }
            return p
        }

        /// Waits until queue `q` has written a packet matching `match`.
        func waitFor(_ q: Int, _ what: String, _ match: (DecodedTCP4) -> Bool) async throws -> DecodedTCP4 {
            for _ in 0..<200 {
                if let p = queues[q].written.first(where: match) { return p }
                try await Task.sleep(for: .milliseconds(10))
            }
            Issue.record("queue \(q) never wrote \(what); it wrote \(queues[q].written)")
            throw CancellationError()
        }

        /// A flow of `device` spliced through the handshake, every packet fed to the wrong queue;
        /// returns the NAT endpoint the server saw.
        func establish(_ device: IPEndpoint, owner: Int, feedTo wrong: Int) async throws -> IPEndpoint {
            let s = ShardedDataPlaneTests.server
            queues[wrong].enqueue(tcp4(src: device, dst: s, flags: .syn, seq: 1000, options: [.maximumSegmentSize(1460)]))
            let syn = try await waitFor(owner, "the SYN toward the server") { $0.flags == .syn && $0.destination == s }
            queues[wrong].enqueue(tcp4(src: s, dst: syn.source, flags: [.syn, .ack], seq: 5000, ack: 1001,
                                       options: [.maximumSegmentSize(1460)]))
            _ = try await waitFor(owner, "the SYN-ACK toward the device") { $0.flags == [.syn, .ack] && $0.destination == device }
            queues[wrong].enqueue(tcp4(src: device, dst: s, flags: .ack, seq: 1001, ack: 5001))
            _ = try await waitFor(owner, "the handshake's ACK") { $0.flags == .ack && $0.source == syn.source && $0.payload.isEmpty }
            return syn.source
        }
    }

    @Test("a flow whose packets all arrive on another shard's queue is created, spliced and written by its own shard")
    func wrongQueue() async throws {
        let lab = try Lab(shards: 2)
        let laptop = address("10.1.0.2")
        let device = IPEndpoint(laptop, lab.port(hashingTo: 1, from: laptop, base: 40000))
        let natSide = try await lab.establish(device, owner: 1, feedTo: 0)
        lab.queues[0].enqueue(tcp4(src: Self.server, dst: natSide, flags: [.ack, .psh], seq: 5001, ack: 1001, payload: Array("hello".utf8)))
        let data = try await lab.waitFor(1, "the server's data") { $0.payload == Array("hello".utf8) }
        let listing = await lab.plane.listing()
        await lab.stop()
        #expect(data.destination == device && data.source == Self.server && data.checksumsValid)
        #expect(lab.plane.layout.shard(ofNATPort: natSide.port) == 1 && natSide.address == .v4(Self.nat))
        #expect(lab.queues[0].written.isEmpty)
        #expect(listing.flows.count == 1 && listing.flows.first?.state == .established)
        #expect(listing.flows.first.map { lab.plane.layout.shard(of: $0.id) } == 1)
        #expect(listing.status.flows == 1 && listing.status.flowsCreated == 1 && listing.status.natPortsCapacity == EngineConfig.defaultNATPorts.count)
    }

    @Test("a migration whose new device's SYN lands on another shard splices there, and ids reach their shard")
    func migrationAcrossShards() async throws {
        let lab = try Lab(shards: 2)
        let laptop = address("10.1.0.2"), phone = address("10.3.0.2")
        let device = IPEndpoint(laptop, lab.port(hashingTo: 0, from: laptop, base: 40000))
        // A flow on each shard: ids name their shard.
        let natSide = try await lab.establish(device, owner: 0, feedTo: 1)
        let other = IPEndpoint(laptop, lab.port(hashingTo: 1, from: laptop, base: 41000))
        _ = try await lab.establish(other, owner: 1, feedTo: 1)
        let flows = await lab.plane.listing().flows
        let flow = try #require(flows.first { $0.device == device })
        #expect(lab.plane.layout.shard(of: flow.id) == 0)
        #expect(Set(flows.map { lab.plane.layout.shard(of: $0.id) }) == [0, 1])

        let started = await lab.plane.startMigrations([flow.id, FlowID(999)], to: MigrationTarget(address: phone, awaitsPort: true),
                                                      deadline: .seconds(10))
        #expect(started.count == 2 && started[1].migration == nil && started[1].error != nil)
        let mid = try #require(started.first?.migration)
        #expect(lab.plane.layout.shard(of: mid) == 0)
        let phonePort = lab.port(hashingTo: 1, from: phone, base: 50000)
        if case .failure(let refusal) = await lab.plane.bindMigrationSourcePort(phonePort, to: mid) {
            Issue.record("binding the phone's port was refused: \(refusal)")
        }
        let unknown = MigrationID(mid.rawValue + 2) // same shard, never handed out
        switch await lab.plane.bindMigrationSourcePort(phonePort, to: unknown) {
        case .success: Issue.record("an unknown migration took a port")
        case .failure(let refusal): #expect(refusal == .unknownMigration(unknown))
        }

        // The phone's SYN and ACK arrive on shard 1's queue: shard 0 answers for the server.
        let phoneEnd = IPEndpoint(phone, phonePort)
        lab.queues[1].enqueue(tcp4(src: phoneEnd, dst: Self.server, flags: .syn, seq: 77_000, options: [.maximumSegmentSize(1460)]))
        let synAck = try await lab.waitFor(0, "the proxy's SYN-ACK to the phone") { $0.flags == [.syn, .ack] && $0.destination == phoneEnd }
        #expect(synAck.source == Self.server && synAck.ack.rawValue == 77_001)
        lab.queues[1].enqueue(tcp4(src: phoneEnd, dst: Self.server, flags: .ack, seq: 77_001, ack: synAck.seq.rawValue &+ 1))
        var phase: MigrationPhase?
        for _ in 0..<200 {
            phase = await lab.plane.reports([mid, unknown]).first?.phase
            if phase == .spliced { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(phase == .spliced)
        // After the splice the phone's data, still read on shard 1, goes out through shard 0.
        lab.queues[1].enqueue(tcp4(src: phoneEnd, dst: Self.server, flags: [.ack, .psh], seq: 77_001, ack: synAck.seq.rawValue &+ 1,
                                   payload: Array("from the phone".utf8)))
        let up = try await lab.waitFor(0, "the phone's data toward the server") { $0.payload == Array("from the phone".utf8) }
        let reports = await lab.plane.reports([unknown, mid])
        let listing = await lab.plane.listing()
        await lab.stop()
        #expect(up.source == natSide && up.destination == Self.server && up.checksumsValid)
        #expect(reports.map(\.id) == [mid])
        #expect(listing.flows.first { $0.id == flow.id }?.device == phoneEnd)
        #expect(!lab.queues[1].written.contains { $0.payload == Array("from the phone".utf8) })
    }
}
