#if canImport(Glibc)
import Glibc
#endif
import Engine
import GatewayHost
import PacketIO
import Wire

/// The kernel path at run time: the table's sets, changed as the engines hand flows over and
/// take them back, and their counters. Shared by the data-plane shards (the nftables context
/// is locked inside `Nftables`).
public final class KernelPath: @unchecked Sendable {
    public let table: KernelPathTable
    private let nft: Nftables
    /// The gateway's connection tracking, when the kernel has ctnetlink (`liberalTracking`).
    private let conntrack: Result<ConntrackSession, SystemError>

    public init(table: KernelPathTable) throws(SystemError) {
        self.table = table
        self.nft = try Nftables()
        do {
            conntrack = .success(try ConntrackSession())
        } catch {
            conntrack = .failure(error)
        }
    }

    /// Installs the flows' rewriting (all of it or, on error, none).
    public func enter(_ flows: [KernelPathFlow]) throws(SystemError) {
        guard !flows.isEmpty else { return }
        try nft.run(table.elementCommands("add", flows))
    }

    /// Tells the gateway's conntrack to be liberal with the NAT side of the flows just handed
    /// over (`ConntrackSession`: that entry sees none of the flow's segments while the kernel
    /// forwards it, and would call them invalid once the proxy forwards it again). A flow
    /// conntrack does not track is skipped; returns the first other error, if any.
    public func liberalTracking(of flows: [KernelPathFlow]) -> SystemError? {
        let session: ConntrackSession
        switch conntrack {
        case .success(let s): session = s
        case .failure(let error): return error
        }
        var first: SystemError?
        for f in flows {
            guard let nat = f.nat.ipv4, let server = f.server.ipv4 else { continue } // IPv4 only (`table ip`)
            do {
                try session.setLiberal(from: nat, to: server)
            } catch where error.errno == ENOENT {
            } catch {
                first = first ?? error
            }
        }
        return first
    }

    /// Removes the flows' rewriting; a flow whose elements are already gone is not an error.
    public func leave(_ flows: [KernelPathFlow]) throws(SystemError) {
        guard !flows.isEmpty else { return }
        do {
            try nft.run(table.elementCommands("delete", flows))
        } catch where error.errno == ENOENT && flows.count > 1 {
            // One of them was gone, so the transaction did nothing: one at a time.
            for f in flows {
                do { try nft.run(table.elementCommands("delete", [f])) } catch where error.errno == ENOENT {}
            }
        } catch where error.errno == ENOENT {}
    }

    /// The previous proxy's flows with "in the kernel" as the table really holds it, and the
    /// rewriting of flows nobody adopted removed (a restart after a crash, issue "Survive a
    /// proxy restart"): a crash between a hand-over's installation and its record in the
    /// checkpoint, or between a take-back's removal and its record, leaves the two apart. A
    /// flow counts as in the kernel when both its device-side and its server-side entries are
    /// there; anything else of it is removed, so it is the engine's. Every shard's flows at
    /// once: an entry is stale only if no shard adopts it. Also returns the entries removed.
    public func reconcile(_ checkpoints: FlowCheckpoints) throws(SystemError) -> (FlowCheckpoints, removed: Int) {
        var reconciled = checkpoints
        var removed = 0
        // Each family's sets hold that family's flows (a flow of two families is never here).
        for family in table.families {
            let up = Set(KernelPathTable.counters(fromJSON: try nft.run(table.listSetCommand(deviceSide: true, family: family), json: true)).keys)
            let down = Set(KernelPathTable.counters(fromJSON: try nft.run(table.listSetCommand(deviceSide: false, family: family), json: true)).keys)
            var keptUp: Set<[String]> = [], keptDown: Set<[String]> = []
            reconciled = reconciled.adjusted { flows in
                for i in flows.indices where flows[i].device.family == family && flows[i].server.family == family {
                    let f = flows[i]
                    let upKey = ["\(f.device.address)", "\(f.device.port)", "\(f.server.address)", "\(f.server.port)"]
                    let downKey = ["\(f.server.address)", "\(f.server.port)", "\(f.natPort)"]
                    flows[i].inKernel = up.contains(upKey) && down.contains(downKey)
                    if flows[i].inKernel { keptUp.insert(upKey); keptDown.insert(downKey) }
                }
            }
            let staleUp = up.subtracting(keptUp).sorted { $0.lexicographicallyPrecedes($1) }
            let staleDown = down.subtracting(keptDown).sorted { $0.lexicographicallyPrecedes($1) }
            let commands = table.keyDeletionCommands(toServer: staleUp, toDevice: staleDown, family: family)
            if !commands.isEmpty { try nft.run(commands) }
            removed += staleUp.count + staleDown.count
        }
        return (reconciled, removed)
    }

    /// The kernel's counters of `flows` (those the sets hold).
    public func counters(of flows: [KernelPathFlow]) throws(SystemError) -> [KernelPathCounters] {
        guard !flows.isEmpty else { return [] }
        var up: [[String]: (packets: UInt64, bytes: UInt64)] = [:], down = up
        for family in table.families where flows.contains(where: { $0.device.family == family }) {
            up.merge(KernelPathTable.counters(fromJSON: try nft.run(table.listSetCommand(deviceSide: true, family: family), json: true))) { a, _ in a }
            down.merge(KernelPathTable.counters(fromJSON: try nft.run(table.listSetCommand(deviceSide: false, family: family), json: true))) { a, _ in a }
        }
        return flows.compactMap { f in
            guard let u = up[["\(f.device.address)", "\(f.device.port)", "\(f.server.address)", "\(f.server.port)"]],
                  let d = down[["\(f.server.address)", "\(f.server.port)", "\(f.nat.port)"]] else { return nil }
            return KernelPathCounters(id: f.id, packetsToServer: u.packets, bytesToServer: u.bytes,
                                      packetsToDevice: d.packets, bytesToDevice: d.bytes)
        }
    }
}

extension KernelPathTable {
    /// Adds (`add`) or deletes (`delete`) the flows' elements, in one transaction.
    public func elementCommands(_ verb: String, _ flows: [KernelPathFlow]) -> String {
        elementCommands(verb, elements: flows.map { KernelPathTable.Element(device: $0.device, server: $0.server, natPort: $0.nat.port) })
    }
}
