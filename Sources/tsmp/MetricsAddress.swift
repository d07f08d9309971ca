import ArgumentParser

/// `--metrics` of the namespace service and the agent: `ADDR:PORT`, or just `PORT` for the
/// loopback address (metrics are plain HTTP: keep them local unless a scraper must reach them).
struct MetricsAddress: ExpressibleByArgument, CustomStringConvertible {
    var host: String
    var port: Int

    init?(argument: String) {
        if !argument.isEmpty, argument.count <= 5, argument.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let p = Int(argument), (1...65535).contains(p) else { return nil }
            host = "127.0.0.1"
            port = p
            return
        }
        guard let listen = try? ListenAddress(parsing: argument, flag: "--metrics"), listen.port > 0 else { return nil }
        host = listen.host
        port = listen.port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static let help = ArgumentHelp("Serve Prometheus metrics at /metrics on ADDR:PORT (PORT alone: 127.0.0.1:PORT).",
                                   valueName: "addr:port")
}
