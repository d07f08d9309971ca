import ArgumentParser
import Engine
import Wire

// Argument types of the CLI, parsed with messages that say what is expected.

extension IPv4Address: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension IPv4Endpoint: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// An address of either family: "192.0.2.1", "2001:db8::1" or "[2001:db8::1]".
struct AddressArgument: ExpressibleByArgument {
    var address: IPAddress
    init?(argument: String) {
        var text = Substring(argument)
        if text.hasPrefix("[") && text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        guard let a = IPAddress(text) else { return nil }
        address = a
    }
}

/// "ipv4" or "ipv6".
struct FamilyArgument: ExpressibleByArgument {
    var family: IPFamily
    init(family: IPFamily) { self.family = family }
    init?(argument: String) {
        switch argument.lowercased() {
        case "ipv4", "4": family = .ipv4
        case "ipv6", "6": family = .ipv6
        default: return nil
        }
    }
    static var allValueStrings: [String] { ["ipv4", "ipv6"] }
}

/// `tcp/PORT`, `tcp/LO-HI` (flows the engine splices), or `rtsp/PORT`, `rtsp/LO-HI` (RTSP
/// sessions the media relay relays, SMP draft §5).
struct InterceptSpec: ExpressibleByArgument {
    var range: PortRange
    var rtsp = false
    init?(argument: String) {
        if argument.hasPrefix("tcp/"), let r = PortRange(argument.dropFirst(4)) {
            range = r
        } else if argument.hasPrefix("rtsp/"), let r = PortRange(argument.dropFirst(5)) {
            range = r
            rtsp = true
        } else {
            return nil
        }
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

extension PortRange: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension ServiceMapping: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}
