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
/// It is fed by the engines' events (`EngineEvent`), which each shard's loop passes on after
/// calling its engine: `expectNewDeviceSyn` adds or updates a waiting migration,
/// `newDeviceSynNoLongerAwaited` and `released` remove entries. It never calls an engine, so
/// no lock is held across the two.
///
/// Invariants: an entry names the shard whose engine holds (or awaits) the 4-tuple; a waiting
/// migration is offered to one SYN only (once given, an update of it does not offer it again);
/// a redirect goes only when the engine it names says it released the 4-tuple.
final class ShardRegistry: Sendable {
    struct DeviceKey: Hashable {
        var device: IPEndpoint
        var original: IPEndpoint
    }
    struct Awaited {
        var shard: Int
        var target: MigrationTarget
        var original: IPEndpoint
    }
    struct Redirect {
        var shard: Int
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
        /// Migrations a SYN was given to, until their engine says they no longer wait.
        var given: Set<MigrationID> = []
        var redirects: [DeviceKey: Redirect] = [:]
    }
    private let state = Mutex(State())
    private let entries = Atomic<Int>(0)

    var isEmpty: Bool { entries.load(ordering: .acquiring) == 0 }
    var count: Int { entries.load(ordering: .acquiring) }

    /// Migration `id` on `shard` waits for a SYN from `target` to `original` (or its target's
    /// port became known). Ignored once a SYN was given to it.
    func expect(_ id: MigrationID, shard: Int, target: MigrationTarget, original: IPEndpoint) {
        update { s in
            guard !s.given.contains(id) else { return }
            s.awaited[id] = Awaited(shard: shard, target: target, original: original)
        }
    }

    /// Migration `id` waits for no SYN any more (its engine said so).
    func forget(_ id: MigrationID) {
        update { s in
            s.awaited[id] = nil
            s.given.remove(id)
        }
    }

    /// `shard`'s engine no longer holds the 4-tuple: its redirect (if it names `shard`) goes.
    func release(device: IPEndpoint, original: IPEndpoint, shard: Int) {
        let key = DeviceKey(device: device, original: original)
        update { s in
            if s.redirects[key]?.shard == shard { s.redirects[key] = nil }
        }
    }

    /// Where a device packet of no flow of the asking shard goes: a redirect, or for an opening
    /// SYN the (lowest-id) migration waiting for it, which stops waiting (no other SYN is given
    /// to it) and is recorded as a redirect so the rest of the new sub-connection (and a
    /// retransmitted SYN) follows. Nil: no migration waits for it, the hash decides.
    func owner(device: IPEndpoint, original: IPEndpoint, openingSyn: Bool) -> Route? {
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
            s.given.insert(id)
            s.redirects[key] = Redirect(shard: a.shard, migration: id)
            return Route(shard: a.shard, migration: id)
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
