import Engine
import PacketIO
import Wire

/// The shards of a multi-queue data plane as each loop sees the others: where a packet
/// belongs (`ShardLayout`, then `ShardRegistry` for 4-tuples that moved), and their inboxes.
///
/// Routing of a packet read by shard `me`:
/// - to the NAT address: the shard owning its destination port (disjoint sub-ranges);
/// - from a device: `me` when its hash names `me` and no 4-tuple has moved (the common case,
///   no lock) or when `me`'s engine holds the 4-tuple; else the registry's owner (a migration's
///   new device); else the hash's shard;
/// - anything else (not IPv4 TCP): `me`, whose engine drops or passes it as it would.
final class ShardPeers: @unchecked Sendable {
    let layout: ShardLayout
    let nat: IPv4Address
    let nat6: IPv6Address?
    let registry = ShardRegistry()
    /// Set once, before any loop starts; read-only afterwards.
    private(set) var planes: [DataPlane] = []

    init(layout: ShardLayout, nat: IPv4Address, nat6: IPv6Address?) {
        self.layout = layout
        self.nat = nat; self.nat6 = nat6
    }

    func connect(_ planes: [DataPlane]) {
        self.planes = planes
        for p in planes { p.peers = self }
    }

    /// Breaks the planes' references back to this (after every loop stopped).
    func disconnect() {
        for p in planes { p.peers = nil }
        planes = []
    }

    /// Where a packet read by shard `me` goes; `engine` is `me`'s. A new device's SYN carries
    /// the migration the registry gave it to.
    func owner(of packet: UnsafeRawBufferPointer, me: Int, engine: SpliceEngine, now: Instant) -> ShardRegistry.Route {
        switch ShardKey(packet, nat: nat, nat6: nat6, natPorts: layout.natPorts) {
        case .none:
            return .init(shard: me)
        case .natPort(let port):
            return .init(shard: layout.shard(ofNATPort: port) ?? me)
        case .device(let source, let destination, let openingSyn):
            let hashed = layout.shard(device: source, original: destination)
            if hashed == me && registry.isEmpty { return .init(shard: me) }
            if engine.holds(device: source, original: destination) { return .init(shard: me) }
            if !registry.isEmpty,
               let route = registry.owner(device: source, original: destination, openingSyn: openingSyn) {
                return route
            }
            return .init(shard: hashed)
        }
    }

    /// Hands the packets of `batch` that other shards own to them (marked dropped here); a new
    /// device's SYN kept here is assigned to its migration in this shard's engine first.
    func route(_ batch: PacketBatch, from plane: DataPlane, now: Instant) {
        let me = plane.engine.shard.index
        for i in 0..<batch.count where !batch.dropped[i] {
            let packet = batch.packet(i)
            let route = owner(of: UnsafeRawBufferPointer(packet), me: me, engine: plane.engine, now: now)
            guard route.shard != me, route.shard < planes.count else {
                if let mid = route.migration { plane.assignNewDeviceSyn(UnsafeRawBufferPointer(packet), to: mid) }
                continue
            }
            planes[route.shard].handOver(packet, offload: batch.offloads[i], migration: route.migration)
            batch.markDropped(i)
        }
    }
}
