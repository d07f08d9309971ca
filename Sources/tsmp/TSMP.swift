import ArgumentParser
import Foundation
import Logging
import Telemetry

/// `tsmp`: moves live TCP connections between a user's devices (DESIGN §1, §9).
@main
struct TSMP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tsmp",
        abstract: "Splice TCP flows in user space on a Linux gateway and move them between a user's devices.",
        discussion: """
        Run `tsmp proxy` on the gateway (as root, or as a user with CAP_NET_ADMIN and CAP_NET_RAW: \
        the tsmp-proxy unit does that); inspect it with `tsmp flows`; test the engine \
        offline on a capture with `tsmp replay`. The control plane: `tsmp namespace serve` \
        (users, devices, locators; issues credentials), `tsmp agent` on each device, and \
        `tsmp migrate --to DID` from a device.

        Examples:
          tsmp proxy --devices eth1,eth2 --uplink eth0 --nat 192.0.2.1 --intercept tcp/80
          tsmp flows --json
          tsmp replay capture.pcap --out rewritten.pcap --nat 10.2.0.1 --intercept tcp/8080
          tsmp migrate --credentials laptop.cred --proxy https://10.1.0.1:7444 --to phone.bob@example.com --all --wait
        """,
        version: BuildInfo.versionLine,
        subcommands: [ProxyCommand.self, FlowsCommand.self, MigrateCommand.self, MigrationsCommand.self, EventsCommand.self, AgentCommand.self, DeviceCommand.self,
                      NamespaceCommand.self, ReplayCommand.self, BenchEngineCommand.self, BenchCheckpointCommand.self, BenchControlCommand.self, BenchMediaCommand.self,
                      ContactsCommand.self, ShareCommand.self])
}

/// Logging options shared by the long-running commands.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: ArgumentHelp("Log lines as text (key=value, values with spaces quoted) or json (one object per line).",
                                            valueName: "text|json"))
    var logFormat: LogFormat = .text

    func bootstrap() {
        let level = logLevel, format = logFormat
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, format: format)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

/// A failure at run time (not a usage mistake): printed as `tsmp CMD: message` on stderr,
/// exit status 1, without the usage text ArgumentParser adds to `ValidationError`s.
struct RuntimeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ command: String, _ message: String) { description = "tsmp \(command): \(message)" }
}

extension ParsableCommand {
    /// Runs `body`, turning a `RuntimeFailure` into a message and exit status 1.
    static func reportingFailures(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let failure as RuntimeFailure {
            FileHandle.standardError.write(Data((failure.description + "\n").utf8))
            throw ExitCode(1)
        }
    }

    static func reportingFailures(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as RuntimeFailure {
            FileHandle.standardError.write(Data((failure.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
