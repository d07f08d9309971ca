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

/// `tcp/PORT` or `tcp/LO-HI`.
struct InterceptSpec: ExpressibleByArgument {
    var range: PortRange
    init?(argument: String) {
        guard argument.hasPrefix("tcp/"), let r = PortRange(argument.dropFirst(4)) else { return nil }
        range = r
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

extension PortRange: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension ServiceMapping: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}
