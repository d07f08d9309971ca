/// One change tsmp made to the gateway's kernel. Setup records each change in the state file
/// *before* making it, so a crash at any point leaves a record of everything that might exist;
/// undoing a change that was never made is harmless ("already gone").
public enum GatewayChange: Hashable, Sendable, CustomStringConvertible {
    /// The link was down and tsmp set it up. Undo: set it down.
    case linkUp(link: String)
    /// tsmp changed the link's MTU. Undo: set `previous` back.
    case linkMTU(link: String, previous: UInt32, mtu: UInt32)
    /// tsmp added this address to the link. Undo: delete it.
    case address(NetlinkPrefix, link: String)
    /// tsmp added this route. Undo: delete it.
    case route(NetlinkRoute)
    /// tsmp added this rule. Undo: delete it.
    case rule(NetlinkRule)
    /// tsmp deleted this rule (the kernel's `pref 0 lookup local`). Undo: add it back.
    case removedRule(NetlinkRule)
    /// tsmp changed a sysctl from `previous` to `value`. Undo: set `previous` back, if the
    /// value is still ours.
    case sysctl(key: String, previous: String, value: String)
    /// tsmp created this nftables table (`ip` family) from `ruleset` (the kernel path's
    /// rewriting, `KernelPathTable`). Undo: delete the table, and all it holds.
    case nftTable(name: String, ruleset: String)

    /// What was done, in `ip` words: "add rule pref 10000 ...", "set link tsmp0 up".
    public var description: String {
        switch self {
        case .linkUp(let link): "set link \(link) up"
        case .linkMTU(let link, let previous, let mtu): "set link \(link) mtu \(mtu) (was \(previous))"
        case .address(let prefix, let link): "add address \(prefix) dev \(link)"
        case .route(let route): "add route \(route)"
        case .rule(let rule): "add rule \(rule)"
        case .removedRule(let rule): "delete rule \(rule)"
        case .sysctl(let key, let previous, let value): "set \(key) = \(value) (was \(previous))"
        case .nftTable(let name, let ruleset): "add nftables table \(Self.nftFamily(of: ruleset)) \(name)"
        }
    }

    /// The nftables family of a table's ruleset ("table inet NAME {..." -> "inet"); "ip" when
    /// it does not say (the rulesets tsmp writes all start with their table).
    static func nftFamily(of ruleset: String) -> String {
        let words = ruleset.split(whereSeparator: { $0 == " " || $0 == "\n" }).prefix(2)
        guard words.count == 2, words.first == "table", ["ip", "ip6", "inet"].contains(String(words.last!)) else { return "ip" }
        return String(words.last!)
    }

    /// What undoing it does: "delete rule pref 10000 ...", "set link tsmp0 down".
    public var undoDescription: String {
        switch self {
        case .linkUp(let link): "set link \(link) down"
        case .linkMTU(let link, let previous, _): "set link \(link) mtu \(previous)"
        case .address(let prefix, let link): "delete address \(prefix) dev \(link)"
        case .route(let route): "delete route \(route)"
        case .rule(let rule): "delete rule \(rule)"
        case .removedRule(let rule): "add rule \(rule)"
        case .sysctl(let key, let previous, _): "set \(key) = \(previous)"
        case .nftTable(let name, let ruleset): "delete nftables table \(Self.nftFamily(of: ruleset)) \(name)"
        }
    }
}

extension GatewayChange: Codable {
    private enum Kind: String, Codable {
        case linkUp = "link-up", linkMTU = "link-mtu", address, route, rule
        case removedRule = "removed-rule", sysctl
        case nftTable = "nft-table"
    }

    private enum Keys: String, CodingKey {
        case kind, link, previous, mtu, address, route, rule, key, value, name, ruleset
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        switch try c.decode(Kind.self, forKey: .kind) {
        case .linkUp: self = .linkUp(link: try c.decode(String.self, forKey: .link))
        case .linkMTU:
            self = .linkMTU(link: try c.decode(String.self, forKey: .link),
                            previous: try c.decode(UInt32.self, forKey: .previous),
                            mtu: try c.decode(UInt32.self, forKey: .mtu))
        case .address:
            self = .address(try c.decode(NetlinkPrefix.self, forKey: .address), link: try c.decode(String.self, forKey: .link))
        case .route: self = .route(try c.decode(NetlinkRoute.self, forKey: .route))
        case .rule: self = .rule(try c.decode(NetlinkRule.self, forKey: .rule))
        case .removedRule: self = .removedRule(try c.decode(NetlinkRule.self, forKey: .rule))
        case .sysctl:
            self = .sysctl(key: try c.decode(String.self, forKey: .key),
                           previous: try c.decode(String.self, forKey: .previous),
                           value: try c.decode(String.self, forKey: .value))
        case .nftTable:
            self = .nftTable(name: try c.decode(String.self, forKey: .name), ruleset: try c.decode(String.self, forKey: .ruleset))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch self {
        case .linkUp(let link):
            try c.encode(Kind.linkUp, forKey: .kind)
            try c.encode(link, forKey: .link)
        case .linkMTU(let link, let previous, let mtu):
            try c.encode(Kind.linkMTU, forKey: .kind)
            try c.encode(link, forKey: .link)
            try c.encode(previous, forKey: .previous)
            try c.encode(mtu, forKey: .mtu)
        case .address(let prefix, let link):
            try c.encode(Kind.address, forKey: .kind)
            try c.encode(prefix, forKey: .address)
            try c.encode(link, forKey: .link)
        case .route(let route):
            try c.encode(Kind.route, forKey: .kind)
            try c.encode(route, forKey: .route)
        case .rule(let rule):
            try c.encode(Kind.rule, forKey: .kind)
            try c.encode(rule, forKey: .rule)
        case .removedRule(let rule):
            try c.encode(Kind.removedRule, forKey: .kind)
            try c.encode(rule, forKey: .rule)
        case .sysctl(let key, let previous, let value):
            try c.encode(Kind.sysctl, forKey: .kind)
            try c.encode(key, forKey: .key)
            try c.encode(previous, forKey: .previous)
            try c.encode(value, forKey: .value)
        case .nftTable(let name, let ruleset):
            try c.encode(Kind.nftTable, forKey: .kind)
            try c.encode(name, forKey: .name)
            try c.encode(ruleset, forKey: .ruleset)
        }
    }
}

/// The state file /run/tsmp/netns-INODE/TUN.json: who installed what. `tsmp proxy cleanup` undoes the
/// `changes` of every state file whose process is gone, newest first.
public struct GatewayState: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var tunName: String
    /// The process that made the changes.
    public var pid: Int32
    /// That process's start time (/proc/PID/stat field 22, clock ticks since boot), so a
    /// recycled pid is not mistaken for it. Nil when it could not be read.
    public var processStartTime: UInt64?
    /// The plan being installed, for whoever reads the file.
    public var plan: GatewayPlan?
    /// In the order they were made.
    public var changes: [GatewayChange]

    public init(tunName: String, process: GatewayProcess, plan: GatewayPlan?, changes: [GatewayChange] = []) {
        self.version = Self.currentVersion
        self.tunName = tunName
        self.pid = process.pid
        self.processStartTime = process.startTime
        self.plan = plan
        self.changes = changes
    }

    /// The process recorded in the file.
    public var process: GatewayProcess { GatewayProcess(pid: pid, startTime: processStartTime) }
}
