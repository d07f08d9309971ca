import Engine
import Gateway
import GatewayHost

extension ProxyRunCommand {
    /// The MSS clamp for the links the proxy knows (`--clamp-mss`): the uplink's MTU toward
    /// servers, the smallest device link's toward devices. A link it cannot read is left out
    /// (no clamp that way) rather than guessed.
    static func mssClamp(uplink: String, devices: [String]) -> MSSClamp {
        let session = try? NetlinkSession()
        func mtu(_ name: String) -> Int? {
            guard let session, let link = try? session.link(named: name) else { return nil }
            return Int(link.mtu)
        }
        return MSSClamp(uplinkMTU: mtu(uplink), deviceMTUs: devices.compactMap(mtu))
    }
}
