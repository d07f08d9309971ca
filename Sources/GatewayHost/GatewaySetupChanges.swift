#if canImport(Glibc)
import Glibc
#endif
import PacketIO

/// What undoing one change came to.
public enum GatewayUndoOutcome: Sendable, Equatable {
    /// The change was reverted.
    case undone
    /// There was nothing to revert: the object is already gone (or back), for instance because
    /// its link disappeared with the process that owned the TUN.
    case alreadyGone
    /// Deliberately not reverted; the reason says why (a sysctl someone changed since).
    case leftAlone(String)
}

extension GatewayChange {
    /// Makes the change.
    func apply(session: NetlinkSession, sysctl: Sysctl) throws(SystemError) {
        switch self {
        case .linkUp(let link): try session.setLink(link, up: true)
        case .linkMTU(let link, _, let mtu): try session.setLinkMTU(link, mtu)
        case .address(let prefix, let link): try session.addAddress(prefix, to: link)
        case .route(let route): try session.addRoute(route)
        case .rule(let rule): try session.addRule(rule)
        case .removedRule(let rule): try session.deleteRule(rule)
        case .sysctl(let key, _, let value): try sysctl.write(key, value)
        case .nftTable(_, let ruleset): try Nftables().run(ruleset)
        }
    }

    /// Reverts the change. Safe to call for a change that was never made or is already
    /// reverted: that is `.alreadyGone`, not an error.
    func undo(session: NetlinkSession, sysctl: Sysctl) throws(SystemError) -> GatewayUndoOutcome {
        do {
            switch self {
            case .linkUp(let link): try session.setLink(link, up: false)
            case .linkMTU(let link, let previous, _): try session.setLinkMTU(link, previous)
            case .address(let prefix, let link): try session.deleteAddress(prefix, from: link)
            case .route(let route): try session.deleteRoute(route)
            case .rule(let rule): try session.deleteRule(rule)
            case .removedRule(let rule):
                do { try session.addRule(rule) } catch where error.errno == EEXIST { return .alreadyGone }
            case .sysctl(let key, let previous, let value):
                let current = try sysctl.read(key)
                if current == previous { return .alreadyGone }
                if current != value { return .leftAlone("\(key) is \(current) now, changed since tsmp set it to \(value)") }
                try sysctl.write(key, previous)
            case .nftTable(let name, let ruleset):
                try Nftables().run("delete table \(GatewayChange.nftFamily(of: ruleset)) \(name)")
            }
            return .undone
        } catch where error.meansAlreadyGone {
            return .alreadyGone
        }
    }
}
