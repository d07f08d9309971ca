import ArgumentParser
import Engine
import Forwarding
import Gateway
import Foundation
import Logging
import PacketIO
import Wire

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a capture through the splice engine offline and write what it would emit.",
        discussion: """
        No root needed, nothing touches the network. Reads pcap or pcapng (raw IP, Ethernet, \
        Linux cooked v1/v2). Packets a `tsmp proxy --capture` file marks as written by the \
        proxy are skipped, so a capture replays as its input. The capture's timestamps drive \
        the engine's clock. Malformed records and packets are reported and skipped; the exit \
        status is non-zero only when the file itself can't be read.

        Examples:
          tsmp replay run.pcap --nat 10.2.0.1 --intercept tcp/8080 --out emitted.pcap
          tsmp replay run.pcap --nat 10.2.0.1 --service 10.9.9.9:80=10.2.0.2:8080 --json
        """)

    @Argument(help: "The capture to replay.")
    var input: String

    @Option(help: "Write the emitted packets here (pcap, raw IP).")
    var out: String?

    @Option(help: "The NAT address the capture's proxy used.")
    var nat: IPv4Address = IPv4Address(10, 2, 0, 1)

    @Option(help: "NAT port range.")
    var natPorts: PortRange = EngineConfig.defaultNATPorts

    @Option(help: "Managed destination ports (transparent mode), e.g. tcp/80 or tcp/8000-8100. Repeatable.")
    var intercept: [InterceptSpec] = []

    @Option(help: "Service mapping VIP:PORT=HOST:PORT. Repeatable.")
    var service: [ServiceMapping] = []

    @Flag(help: "Do not verify checksums (captures taken on interfaces with checksum offload).")
    var noVerifyChecksums = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        if intercept.isEmpty && service.isEmpty {
            throw ValidationError("give at least one --intercept tcp/PORT or --service VIP:PORT=HOST:PORT (the proxy's flags when the capture was made)")
        }
    }

    func run() throws { try Self.reportingFailures(runOrFail) }

    private func runOrFail() throws {
        let config = EngineConfig(nat: nat, natPorts: natPorts, intercepts: intercept.map(\.range),
                                  services: service, verifyChecksums: !noVerifyChecksums)
        if let problem = config.problem() { throw ValidationError(problem) }
        let reader: PcapFileReader
        do { reader = try PcapFileReader(path: input) } catch { throw RuntimeFailure("replay", "\(error)") }
        let writer: PcapFileWriter?
        do { writer = try out.map { try PcapFileWriter(path: $0, linkType: .raw) } } catch {
            throw RuntimeFailure("replay", "cannot write \(out ?? ""): \(error)")
        }
        let engine = SpliceEngine(config: config, logger: Logger(label: "tsmp.replay"))
        let report = try Replay(engine: engine).run(input: reader, output: writer)
        try writer?.close()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        let s = report.status!
        print("replayed \(report.packetsReplayed) packets from \(input) (\(reader.recordsRead) records, "
              + "\(report.packetsSkippedAsOutbound) skipped as proxy output, \(reader.truncatedRecords) truncated by the snap length)")
        if reader.skipped.total > 0 { print("skipped records: \(reader.skipped)") }
        if let stop = reader.stopReason { print("stopped early: \(stop)") }
        print("emitted \(report.packetsEmitted) packets: \(s.packetsForwarded) rewritten, \(s.packetsPassedThrough) passed through, \(s.packetsGenerated) generated")
        print("flows: \(s.flowsCreated) created, \(s.flowsClosed) closed, \(s.flowsExpired) expired, \(report.flowsLeft) still open at the end")
        let drops = s.drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print(drops.isEmpty ? "no drops" : "dropped: \(drops)")
        if let out { print("wrote \(writer!.packetsWritten) packets to \(out)") }
    }
}
