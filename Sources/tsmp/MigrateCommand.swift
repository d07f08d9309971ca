import ArgumentParser
import Engine
import Foundation
import Gateway
import Wire

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move live flows to another device: pause, cache, cut, resume there, splice.",
        discussion: """
        Asks the running proxy (local control endpoint) to migrate each --flow to the device \
        at --to-addr. While the migration is pending, the proxy claims the first SYN from \
        that address (and --from-port, if given) to the flow's destination, answers it as the \
        server would and delivers what the old device had not acknowledged, then splices the \
        flow. If no new device connects before --deadline, the flow stays with the old device \
        and nothing is lost (rolled back).

        With --wait, prints each phase with its time and the cut offsets: the bytes of each \
        direction that belong to the old device (the new device's application resumes its \
        own sending after `to-server` bytes). Exit status: 0 when every flow was spliced, 1 \
        when any was refused or rolled back.

        Examples:
          tsmp migrate --flow 3 --to-addr 10.3.0.2 --wait
          tsmp migrate --flow 3 --flow 4 --to-addr 10.3.0.2 --deadline 20 --json --wait
        """)

    @Option(help: "A flow id from `tsmp flows`. Repeatable.")
    var flow: [UInt64]

    @Option(help: "The new device's address.")
    var toAddr: IPv4Address

    @Option(help: "The new device's source port, when known (claims only that SYN).")
    var fromPort: UInt16?

    @Option(help: "Seconds for the new device to connect and take the cached bytes before rolling back.")
    var deadline: Double = 10

    @Option(help: "The proxy's control endpoint.")
    var control: IPv4Endpoint = ProxyDefaults.control

    @Flag(help: "Wait until every migration has spliced or rolled back, and report.")
    var wait = false

    @Flag(help: "Print JSON.")
    var json = false

    func validate() throws {
        if flow.isEmpty { throw ValidationError("give at least one --flow ID (see `tsmp flows`)") }
        if Set(flow).count != flow.count { throw ValidationError("a --flow is given twice") }
        if !(deadline > 0 && deadline <= 600) { throw ValidationError("--deadline must be within (0, 600] seconds") }
        if fromPort == 0 { throw ValidationError("--from-port must be 1-65535") }
        if fromPort != nil && flow.count > 1 { throw ValidationError("--from-port claims one SYN: use it with a single --flow") }
    }

    func run() throws { try Self.reportingFailures(runOrFail) }

    private func runOrFail() throws {
        let client = ControlClient(endpoint: control)
        let started: [MigrationStartResult]
        do {
            started = try client.post("/v1/migrations", json: MigrationRequestBody(
                flows: flow.map(FlowID.init), toAddress: toAddr, fromPort: fromPort, deadlineSeconds: deadline),
                as: [MigrationStartResult].self)
        } catch {
            throw RuntimeFailure("migrate", "\(error)")
        }
        let ids = started.compactMap(\.migration)
        var reports: [MigrationReport] = []
        if wait && !ids.isEmpty {
            let limit = Date().addingTimeInterval(deadline * 2 + 10)
            while true {
                reports = try client.get("/v1/migrations?id=\(ids.map(\.description).joined(separator: ","))", as: MigrationReports.self).migrations
                if reports.allSatisfy(\.isFinished) || Date() > limit { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        if json {
            struct Output: Codable { var started: [MigrationStartResult]; var reports: [MigrationReport] }
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try e.encode(Output(started: started, reports: reports)), as: UTF8.self))
        } else {
            for s in started where s.error != nil { print("flow \(s.flow): refused: \(s.error!)") }
            for s in started where s.migration != nil && !wait { print("flow \(s.flow): migration \(s.migration!) started") }
            for r in reports { print(MigrationText.render(r)) }
        }
        let refused = started.contains { $0.error != nil }
        let notSpliced = wait && (reports.count != ids.count || reports.contains { $0.phase != .spliced })
        if refused || notSpliced { throw ExitCode(1) }
    }
}

enum MigrationText {
    static func render(_ r: MigrationReport) -> String {
        var out = "flow \(r.flow): migration \(r.id) \(r.phase.rawValue) (\(r.oldDevice) -> \(r.newDevice?.description ?? r.target.description))"
        if let reason = r.reason { out += "\n  reason: \(reason)" }
        for p in r.phases { out += "\n  \(String(format: "%8.3f s", p.seconds))  \(p.phase.rawValue)" }
        out += "\n  cut: to-device \(r.cutOffsetToDevice.map(String.init) ?? "-") bytes, to-server \(r.cutOffsetToServer.map(String.init) ?? "-") bytes"
        out += "\n  cached bytes delivered by the proxy: \(r.bytesCached), retransmissions \(r.retransmissions), timeouts \(r.timeouts)"
        return out
    }
}
