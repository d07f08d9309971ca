import Media
import Wire

/// How the proxy relays RTSP sessions (`--intercept rtsp/PORT`, `--media-ports`): SMP draft §5.
///
/// `--media-ports LO-HI` is laid out as: LO (TCP) the relay's listening port, to which device
/// RTSP connections are redirected; the first even port from LO (UDP) and the next: the
/// device-side pair every SETUP answer names as `server_port`; every following even port (UDP)
/// with the next one: a server-side pair, one per relayed stream; the same numbers (TCP) are
/// the source ports of the relay's own connections to servers.
public struct MediaRelaySettings: Sendable {
    public var rtspPorts: [PortRange]
    /// Service mode (`--media-service VIP:PORT=HOST:PORT`): published RTSP addresses, each
    /// standing for a server.
    public var services: [(published: IPEndpoint, server: IPEndpoint)] = []
    public var ports: PortRange
    public var nat: IPv4Address
    /// The IPv6 NAT address: with it the relay takes IPv6 players and servers too.
    public var nat6: IPv6Address?
    public var lossThreshold: Double
    public var lossHold: Double

    public static let defaultPorts = PortRange(46000, 46199)

    public init(rtspPorts: [PortRange], ports: PortRange = MediaRelaySettings.defaultPorts, nat: IPv4Address,
                lossThreshold: Double = 0.1, lossHold: Double = 5) {
        self.rtspPorts = rtspPorts; self.ports = ports; self.nat = nat
        self.lossThreshold = lossThreshold; self.lossHold = lossHold
    }

    public var listenPort: UInt16 { ports.lower }
    public var devicePort: UInt16 { ports.lower % 2 == 0 ? ports.lower : ports.lower &+ 1 }
    public var serverPairs: [UInt16] {
        let first = Int(devicePort) + 2
        return first + 1 <= Int(ports.upper) ? stride(from: first, to: Int(ports.upper), by: 2).map { UInt16($0) } : []
    }

    /// Why these settings cannot work, or nil.
    public func problem(natPorts: PortRange) -> String? {
        if rtspPorts.isEmpty && services.isEmpty { return "no rtsp/PORT to intercept and no --media-service" }
        for s in services {
            guard s.published.address.family == s.server.address.family else {
                return "--media-service \(s.published)=\(s.server): the published address and the server must be of one family"
            }
            if s.server.address.family == .ipv6 && nat6 == nil {
                return "--media-service \(s.published)=\(s.server): an IPv6 service needs an IPv6 --nat"
            }
        }
        if Set(services.map(\.published)).count != services.count { return "a --media-service address is published twice" }
        if serverPairs.isEmpty { return "--media-ports \(ports) is too small: it needs at least 6 ports (listening, the device-side pair, one server-side pair)" }
        if ports.lower <= natPorts.upper && natPorts.lower <= ports.upper {
            return "--media-ports \(ports) overlaps --nat-ports \(natPorts) (the relay's connections to servers use those TCP ports)"
        }
        if !(lossThreshold > 0 && lossThreshold <= 1) { return "--media-loss-threshold must be above 0 and at most 1 (a fraction lost)" }
        if !(lossHold >= 0 && lossHold <= 3600) { return "--media-loss-hold must be 0 to 3600 seconds" }
        return nil
    }

    public var relayConfig: MediaRelayConfig {
        var config = MediaRelayConfig(devicePortRTP: devicePort, serverPortPairs: serverPairs,
                                      lossMonitor: LossMonitorConfig(threshold: lossThreshold, hold: .seconds(lossHold)))
        config.services = Dictionary(services.map { ($0.published, $0.server) }, uniquingKeysWith: { a, _ in a })
        return config
    }
}
