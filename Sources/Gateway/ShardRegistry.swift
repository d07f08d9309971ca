import Engine
import PacketIO
import Synchronization
import Wire

/// Shared by the shards of a multi-queue data plane: the device-side 4-tuples whose flow does
/// not live on the shard their hash names (a migration's new device), and the new-device SYNs
/// running migrations wait for. It is the one arbiter of those SYNs: whichever queue a SYN is
/// read on, it goes to exactly one waiting migration, which stops waiting at once (the shard's
/// engine claims it for that migration alone). Only that rare path takes its lock: `isEmpty`
/// is one atomic load, and a shard asks only about packets it holds no flow for.
///
/// Invariants: an entry names the shard whose engine holds (or awaits) the 4-tuple; a waiting
/// migration is offered to one SYN only; the owner purges its entries once its engine no
/// longer needs them (`purge`), but never a redirect younger than `redirectGrace` (its SYN may
/// still sit in the owner's inbox).
final class ShardRegistry: Sendable {
    struct DeviceKey: Hashable {
        var device: IPv4Endpoint
        var original: IPv4Endpoint
    }
    struct Awaited {
        var shard: Int
        var target: MigrationTarget
        var original: IPv4Endpoint
    }
    struct Redirect {
        var shard: Int
        var since: Instant
        /// The migration the 4-tuple's opening SYN was given to.
        var migration: MigrationID?
    }
    /// Where a device packet goes: its shard, and for a new device's SYN the migration it is for.
    struct Route: Equatable {
        var shard: Int
        var migration: MigrationID?
    }
    private struct State {
        var awaited: [MigrationID: Awaited] = [:]
        var redirects: [DeviceKey: Redirect] = [:]
    }
    private let state = Mutex(State())
    private let entries = Atomic<Int>(0)
    static let redirectGrace: UInt64 = 5_000_000_000

    var isEmpty: Bool { entries.load(ordering: .acquiring) == 0 }
    var count: Int { entries.load(ordering: .acquiring) }

    /// Migration `id` on `shard` waits for a SYN from `target` to `original`.
    func expect(_ id: MigrationID, shard: Int, target: MigrationTarget, original: IPv4Endpoint) {
        update { $0.awaited[id] = Awaited(shard: shard, target: target, original: original) }
    }

    /// The port migration `id`'s new device connects from became known.
    func bind(_ id: MigrationID, port: UInt16) {
        update { s in
            s.awaited[id]?.target.port = port
            s.awaited[id]?.target.awaitsPort = false
        }
    }

    /// Where a device packet of no flow of the asking shard goes: a redirect, or for an opening
    /// SYN the (lowest-id) migration waiting for it, which stops waiting (no other SYN is given
    /// to it) and is recorded as a redirect so the rest of the new sub-connection (and a
    /// retransmitted SYN) follows. Nil: no migration waits for it, the hash decides.
    func owner(device: IPv4Endpoint, original: IPv4Endpoint, openingSyn: Bool, now: Instant) -> Route? {
        let key = DeviceKey(device: device, original: original)
        return update { s -> Route? in
            if let r = s.redirects[key] { return Route(shard: r.shard, migration: openingSyn ? r.migration : nil) }
            guard openingSyn else { return nil }
            let match = s.awaited.filter { _, a in
                a.target.address == device.address && a.original == original && !a.target.awaitsPort
                    && (a.target.port == nil || a.target.port == device.port)
            }.min { $0.key < $1.key }
            guard let (id, a) = match else { return nil }
            s.awaited[id] = nil
            s.redirects[key] = Redirect(shard: a.shard, since: now, migration: id)
            return Route(shard: a.shard, migration: id)
        }
    }

    /// Drops `shard`'s entries its engine no longer needs: migrations no longer waiting for a
    /// new device, redirects to 4-tuples it no longer holds. Runs on `shard`'s loop thread.
    func purge(shard: Int, engine: SpliceEngine, now: Instant) {
        update { s in
            s.awaited = s.awaited.filter { id, a in a.shard != shard || engine.awaitedNewDevice(id) != nil }
            s.redirects = s.redirects.filter { key, r in
                r.shard != shard || now.nanoseconds &- r.since.nanoseconds < Self.redirectGrace
                    || engine.holds(device: key.device, original: key.original)
            }
        }
    }

    private func update<R>(_ body: (inout State) -> R) -> R {
        state.withLock { s in
            let r = body(&s)
            entries.store(s.awaited.count + s.redirects.count, ordering: .releasing)
            return r
        }
    }
}
