import Wire

/// How flows are spread over several engines, one per TUN queue (IFF_MULTI_QUEUE): which shard
/// owns a device-side 4-tuple (a hash), a NAT port (each shard holds a disjoint sub-range of
/// the NAT ports, so a server packet's owner is known from its destination port), a flow id and
/// a migration id (ids are `local * count + index + 1 - count`: unique across shards, and
/// `1, 2, 3...` with one shard, as before).
///
/// Invariants: `count >= 1`, `index < count`, every shard's NAT sub-range is non-empty and
/// the sub-ranges partition `natPorts`; every shard computes the same owner for the same input.
public struct ShardLayout: Sendable, Hashable {
    public let index: Int
    public let count: Int
    /// The whole NAT port range, shared out among the shards.
    public let natPorts: PortRange
    /// Mixed into the device-side hash so a device can't pick ports that crowd one shard.
    public let seed: UInt64

    /// One engine owning everything (a single-queue TUN).
    public static func single(natPorts: PortRange) -> ShardLayout {
        ShardLayout(index: 0, count: 1, natPorts: natPorts, seed: 0, unchecked: ())
    }

    /// Nil when the NAT range can't give every shard a port, or `index` is out of range.
    public init?(index: Int, count: Int, natPorts: PortRange, seed: UInt64) {
        guard count >= 1, index >= 0, index < count, natPorts.count >= count else { return nil }
        self.index = index; self.count = count; self.natPorts = natPorts; self.seed = seed
    }

    private init(index: Int, count: Int, natPorts: PortRange, seed: UInt64, unchecked: Void) {
        self.index = index; self.count = count; self.natPorts = natPorts; self.seed = seed
    }

    /// The same layout seen from shard `index`.
    public func shard(_ index: Int) -> ShardLayout {
        ShardLayout(index: index, count: count, natPorts: natPorts, seed: seed, unchecked: ())
    }

    // MARK: NAT ports

    private func lowerOffset(_ s: Int) -> Int { s * natPorts.count / count }

    /// The NAT ports shard `s` hands out.
    public func natPorts(of s: Int) -> PortRange {
        PortRange(UInt16(Int(natPorts.lower) + lowerOffset(s)), UInt16(Int(natPorts.lower) + lowerOffset(s + 1) - 1))
    }

    /// This shard's NAT ports.
    public var ownNATPorts: PortRange { natPorts(of: index) }

    /// The shard holding NAT port `port`; nil outside the range.
    public func shard(ofNATPort port: UInt16) -> Int? {
        guard natPorts.contains(port) else { return nil }
        let offset = Int(port - natPorts.lower)
        var s = min(count - 1, offset * count / natPorts.count)
        while s + 1 < count && lowerOffset(s + 1) <= offset { s += 1 }
        while s > 0 && lowerOffset(s) > offset { s -= 1 }
        return s
    }

    // MARK: Device-side 4-tuples

    /// The shard that creates the flow of a device-side 4-tuple (the device, and whom it talks to).
    public func shard(device: IPEndpoint, original: IPEndpoint) -> Int {
        guard count > 1 else { return 0 }
        var h = seed ^ (FlowTable.fold(device.address) << 32 | FlowTable.fold(original.address) & 0xFFFF_FFFF)
        if device.family == .ipv6 || original.family == .ipv6 {
            h = Self.mix(seed ^ FlowTable.fold(device.address)) ^ FlowTable.fold(original.address)
        }
        h = Self.mix(h ^ (UInt64(device.port) << 16 | UInt64(original.port)) &* 0x9E37_79B9_7F4A_7C15)
        return Int(h % UInt64(count))
    }

    /// splitmix64's finaliser.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    // MARK: Ids

    /// The public id of this shard's `local`-th id (local counts from 1).
    public func globalID(local: UInt64) -> UInt64 {
        (local - 1) &* UInt64(count) &+ UInt64(index) &+ 1
    }

    /// The local number `globalID(local:)` made `id` from, when this shard handed it out.
    public func localID(global id: UInt64) -> UInt64? {
        guard id > 0, shard(ofID: id) == index else { return nil }
        return (id - 1) / UInt64(count) + 1
    }

    /// The shard that handed out `id` (0 for the invalid id 0).
    public func shard(ofID id: UInt64) -> Int {
        id == 0 ? 0 : Int((id - 1) % UInt64(count))
    }
    public func shard(of flow: FlowID) -> Int { shard(ofID: flow.rawValue) }
    public func shard(of migration: MigrationID) -> Int { shard(ofID: migration.rawValue) }
}

/// What decides a packet's shard, read from its headers without validating the rest (the owner's
/// engine validates and counts bad packets).
public enum ShardKey: Equatable, Sendable {
    /// A packet to the NAT address: a server's side of a flow, owned by the port's shard.
    case natPort(UInt16)
    /// A packet from a device: its 4-tuple; `openingSyn` when it is a SYN without ACK.
    case device(source: IPEndpoint, destination: IPEndpoint, openingSyn: Bool)
    /// Not TCP, or too short to tell: any shard handles (drops) it.
    case none

    /// The key of a TCP packet of either family; `nat`, `nat6` and `natPorts` tell the server
    /// side apart.
    public init(_ bytes: UnsafeRawBufferPointer, nat: IPv4Address, nat6: IPv6Address? = nil, natPorts: PortRange) {
        let peek = HeaderPeek(bytes)
        func isNAT(_ a: IPAddress) -> Bool {
            switch a {
            case .v4(let a): a == nat
            case .v6(let a): a == nat6
            }
        }
        guard let (source, destination, flags) = peek.tcpEndpoints else {
            // An ICMP error belongs to the flow of the segment it quotes (`SpliceEngine+ICMP`).
            let quoted = peek.ipv4ICMPQuotedTCP.map { (IPEndpoint($0.source), IPEndpoint($0.destination)) }
                ?? peek.ipv6ICMPQuotedTCP.map { (IPEndpoint($0.source), IPEndpoint($0.destination)) }
            guard let (quotedSource, quotedDestination) = quoted else { self = .none; return }
            if isNAT(quotedSource.address) && natPorts.contains(quotedSource.port) {
                self = .natPort(quotedSource.port)
            } else {
                self = .device(source: quotedDestination, destination: quotedSource, openingSyn: false)
            }
            return
        }
        if isNAT(destination.address) && natPorts.contains(destination.port) {
            self = .natPort(destination.port)
            return
        }
        self = .device(source: source, destination: destination,
                       openingSyn: flags.contains(.syn) && flags.isDisjoint(with: [.rst, .ack]))
    }
}
