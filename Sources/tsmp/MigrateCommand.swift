import ArgumentParser
import ControlPlane
import Engine
import Forwarding
import Foundation
import Gateway
import Media
import GatewayHost
import Namespace
import Wire

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Move live flows to another device: pause, cache, cut, resume there, splice.",
        discussion: """
        From a device (--credentials, --proxy): asks the proxy (MFR, mutual TLS) to move this \
        device's flows --to another device of the same user, by DID, or with --retrieve to \
        pull flows --from another device of the user to this one. The proxy resolves the \
        target through the namespace and sends its agent an MTR; the agent connects and hands \
        the connection to its application. --all: every established flow of the device.

        On the gateway (--to-addr): asks the running proxy's local control socket (root only) to migrate \
        each --flow to the device at --to-addr. The proxy claims the first SYN from that \
        address (and --from-port, if given) to the flow's destination.

        Either way, while the migration is pending the proxy answers the new device's SYN as \
        the server would, delivers what the old device had not acknowledged, then splices the \
        flow. If no new device connects before --deadline, the flow stays with the old device \
        and nothing is lost (rolled back). With --wait, prints each phase with its time and \
        the cut offsets. Exit status: 0 when every flow was spliced (or started, without \
        --wait), 1 when any was refused or rolled back.

        Examples:
          tsmp migrate --credentials laptop.cred --proxy https://10.1.0.1:7444 --to phone.bob@example.com --all --wait
          tsmp migrate --credentials laptop.cred --proxy https://10.1.0.1:7444 --retrieve --from phone.bob@example.com --all
          tsmp migrate --credentials laptop.cred --proxy https://10.1.0.1:7444 --to phone.bob@example.com --local-port 51234
          tsmp migrate --flow 3 --to-addr 10.3.0.2 --wait
          tsmp migrate --flow 5 --to-addr 2001:db8:3::2 --wait       # an IPv6 device (a service's flow may change family)
          tsmp migrate --flow 3 --flow 4 --to-addr 10.3.0.2 --deadline 20 --json --wait
          tsmp migrate --flow m1 --to-addr 10.3.0.2 --wait          # a video session: the phone's player opens the same URL

        A media session (mN in `tsmp flows`, RTSP with RTP over UDP) moves when the target \
        device's player opens the session's URL through the gateway: the proxy answers it from \
        the session's cache and switches the stream right before the next group of pictures; \
        the server keeps its one session.
        """)

    @Option(help: "A flow id (`tsmp flows`, or the device's own listing), or a media session mN (gateway mode). Repeatable.")
    var flow: [FlowArgument] = []

    var tcpFlows: [UInt64] { flow.compactMap(\.tcp) }
    var mediaSessions: [MediaSessionID] { flow.compactMap(\.media) }

    @Option(help: "A flow by this device's own source port, the 4-tuple as it sees it (device mode). Repeatable.")
    var localPort: [UInt16] = []

    @Flag(help: "Every established flow of the device (device mode).")
    var all = false

    @Option(help: "This device's credential (device mode).")
    var credentials: String?

    @Option(help: "The proxy's device-facing URL (device mode).")
    var proxy: String?

    @Option(help: "The target device's DID, e.g. phone.bob@example.com (device mode).")
    var to: String?

    @Flag(help: "Pull flows of --from to this device (device mode).")
    var retrieve = false

    @Option(help: "With --retrieve: the device holding the flows now.")
    var from: String?

    @Option(help: "The new device's address, IPv4 or IPv6 (gateway mode; the flow's family: a migration keeps it).")
    var toAddr: AddressArgument?

    @Option(help: "The new device's source port, when known (gateway mode; claims only that SYN).")
    var fromPort: UInt16?

    @Option(help: "Seconds for the new device to connect and take the cached bytes before rolling back.")
    var deadline: Double = 10

    @Option(help: ArgumentHelp("The proxy's local control socket (gateway mode; default: the one proxy running in this network namespace; root only).",
                               valueName: "path"))
    var control: String?

    @Flag(help: "Wait until every migration has spliced or rolled back, and report.")
    var wait = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var lab: InsecureLabOption

    var deviceMode: Bool { credentials != nil }

    func validate() throws {
        if Set(flow).count != flow.count { throw ValidationError("a --flow is given twice") }
        if !mediaSessions.isEmpty && !tcpFlows.isEmpty { throw ValidationError("give media sessions (mN) and TCP flows in separate commands") }
        if mediaSessions.count > 1 { throw ValidationError("one media session (mN) per command") }
        if !(deadline > 0 && deadline <= 600) { throw ValidationError("--deadline must be within (0, 600] seconds") }
        if let control, let problem = LocalControlSocket.validate(control) { throw ValidationError(problem) }
        if deviceMode {
            guard let proxy else { throw ValidationError("--credentials needs --proxy URL (the proxy's device-facing endpoint)") }
            try lab.check(proxy, "--proxy")
            if toAddr != nil || fromPort != nil { throw ValidationError("--to-addr/--from-port are for the gateway's local endpoint; with --credentials give --to DID") }
            if [!flow.isEmpty, !localPort.isEmpty, all].filter({ $0 }).count != 1 {
                throw ValidationError("give one of --flow ID..., --local-port PORT... or --all")
            }
            switch (to, retrieve, from) {
            case (.some, false, nil): break
            case (nil, true, .some): break
            case (.some, true, _): throw ValidationError("--to moves your flows away; --retrieve --from pulls them here: give one")
            case (nil, true, nil): throw ValidationError("--retrieve needs --from DID (the device holding the flows)")
            default: throw ValidationError("give --to DID, or --retrieve --from DID")
            }
            if let to { _ = try parseDID(to, "--to") }
            if let from { _ = try parseDID(from, "--from") }
        } else {
            if to != nil || retrieve || from != nil || all || proxy != nil || !localPort.isEmpty {
                throw ValidationError("--to/--retrieve/--from/--all/--local-port/--proxy need --credentials (device mode)")
            }
            if toAddr == nil { throw ValidationError("give --to-addr ADDRESS (gateway mode) or --credentials with --to DID (device mode)") }
            if flow.isEmpty { throw ValidationError("give at least one --flow ID (see `tsmp flows`)") }
            if fromPort == 0 { throw ValidationError("--from-port must be 1-65535") }
            if fromPort != nil && flow.count > 1 { throw ValidationError("--from-port claims one SYN: use it with a single --flow") }
        }
    }

    private func parseDID(_ text: String, _ flag: String) throws -> DeviceID {
        do { return try DeviceID(text) } catch { throw ValidationError("\(flag): \(error)") }
    }

    func run() async throws {
        if deviceMode { try await Self.reportingFailures(runAsDevice) } else { try Self.reportingFailures(runOnGateway) }
    }

    // MARK: Device mode (MFR to the proxy)

    private func runAsDevice() async throws {
        let credential = try loadCredential(credentials!, command: "migrate")
        let request = MigrationFromRequest(flows: tcpFlows.isEmpty ? nil : tcpFlows, localPorts: localPort.isEmpty ? nil : localPort,
                                           all: all ? true : nil,
                                           to: try to.map { try DeviceID($0) }, retrieveFrom: try from.map { try DeviceID($0) },
                                           deadlineSeconds: deadline,
                                           mediaSessions: mediaSessions.isEmpty ? nil : mediaSessions.map(\.description))
        if let session = mediaSessions.first { return try await runMediaAsDevice(session, credential: credential, request: request) }
        let (answer, reports): (MigrationFromAnswer, [MigrationReport]) = try await withEventLoop { group in
            do {
                let link = try PeerClient(baseURL: proxy!, credential: credential, insecureLab: lab.insecureLab, expectedServer: .role(.proxy), group: group)
                let answer: MigrationFromAnswer = try await link.call("POST", "/v1/mfr", json: request)
                let ids = answer.results.compactMap(\.migration)
                var reports: [MigrationReport] = []
                if wait && !ids.isEmpty {
                    let limit = Date().addingTimeInterval(deadline * 2 + 10)
                    while true {
                        let r: MigrationReports = try await link.call("GET", "/v1/mfr", query: ["id": ids.map(\.description).joined(separator: ",")])
                        reports = r.migrations
                        if reports.allSatisfy(\.isFinished) || Date() > limit { break }
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                return (answer, reports)
            } catch {
                throw RuntimeFailure("migrate", "\(error)")
            }
        }
        try report(answer.results, reports, target: answer.target.description)
    }

    // MARK: Gateway mode (local control endpoint)

    private func runOnGateway() throws {
        if let session = mediaSessions.first { return try runMediaOnGateway(session) }
        let client: ControlClient
        let started: [MigrationStartResult]
        do {
            client = ControlClient(socketPath: try control ?? ControlClient.discover())
            started = try client.post("/v1/migrations", json: MigrationRequestBody(
                flows: tcpFlows.map { FlowID($0) }, toAddress: toAddr!.address, fromPort: fromPort, deadlineSeconds: deadline),
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
        try report(started, reports, target: nil)
    }

    private func report(_ started: [MigrationStartResult], _ reports: [MigrationReport], target: String?) throws {
        let ids = started.compactMap(\.migration)
        if json {
            struct Output: Codable { var target: String?; var started: [MigrationStartResult]; var reports: [MigrationReport] }
            try printJSON(Output(target: target, started: started, reports: reports))
        } else {
            for s in started where s.error != nil { print("flow \(s.flow): refused: \(s.error!)") }
            for s in started where s.migration != nil && !wait {
                print("flow \(s.flow): migration \(s.migration!) started" + (target.map { " toward \($0)" } ?? ""))
            }
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

/// `--flow 7` (a TCP flow) or `--flow m7` (a media session).
struct FlowArgument: ExpressibleByArgument, Hashable {
    var tcp: UInt64?
    var media: MediaSessionID?
    init?(argument: String) {
        if argument.hasPrefix("m") {
            guard let id = MediaSessionID(argument) else { return nil }
            media = id
        } else {
            guard let n = UInt64(argument) else { return nil }
            tcp = n
        }
    }
}

extension MigrateCommand {
    /// A media session's migration through the local control socket, with --wait its report.
    func runMediaOnGateway(_ session: MediaSessionID) throws {
        let client: ControlClient
        do {
            client = ControlClient(socketPath: try control ?? ControlClient.discover())
            let (status, body) = try client.request("POST", "/v1/media/migrations", body: Array(try JSONEncoder().encode(
                MediaMigrationRequestBody(session: session, toAddress: toAddr!.address, deadlineSeconds: deadline))))
            guard status == 200 else {
                struct Refusal: Decodable { var error: String }
                let text = (try? JSONDecoder().decode(Refusal.self, from: Data(body)).error)
                    ?? String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                printMediaRefusal(session, text)
                throw ExitCode(1)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw RuntimeFailure("migrate", "\(error)")
        }
        guard wait else {
            if json { print(#"{"session":"\#(session)","phase":"requested"}"#) } else { print("\(session): migration requested toward \(toAddr!.address): open the session's URL on that device") }
            return
        }
        let limit = Date().addingTimeInterval(deadline + 30)
        var last: MediaMigrationStatus?
        while Date() < limit {
            if let s = try? client.get("/v1/media/migrations?id=\(session)", as: MediaMigrationStatus.self) {
                last = s
                if s.finished { break }
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        try printMediaOutcome(session, last)
    }

    /// A media session's MFR (device mode); with --wait, its report.
    func runMediaAsDevice(_ session: MediaSessionID, credential: Credential, request: MigrationFromRequest) async throws {
        let (refusal, status): (String?, MediaMigrationStatus?) = try await withEventLoop { group in
            do {
                let link = try PeerClient(baseURL: proxy!, credential: credential, insecureLab: lab.insecureLab, expectedServer: .role(.proxy), group: group)
                let answer: MigrationFromAnswer = try await link.call("POST", "/v1/mfr", json: request)
                let result = answer.media?.first
                if let error = result?.error ?? (result == nil ? "the proxy started nothing" : nil) { return (error, nil) }
                guard wait else { return (nil, nil) }
                let limit = Date().addingTimeInterval(deadline + 30)
                var last: MediaMigrationStatus?
                while Date() < limit {
                    last = try await link.call("GET", "/v1/mfr/media", query: ["session": session.description])
                    if last?.finished == true { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                return (nil, last)
            } catch {
                throw RuntimeFailure("migrate", "\(error)")
            }
        }
        if let refusal {
            printMediaRefusal(session, refusal)
            throw ExitCode(1)
        }
        guard wait else {
            if json { print(#"{"session":"\#(session)","phase":"requested"}"#) } else { print("\(session): migration requested toward \(to ?? "?")") }
            return
        }
        try printMediaOutcome(session, status)
    }

    /// A media migration the proxy refused, with its reason, as text or JSON.
    func printMediaRefusal(_ session: MediaSessionID, _ reason: String) {
        if json { print(#"{"session":"\#(session)","error":\#(String(reflecting: reason))}"#) } else { print("\(session): refused: \(reason)") }
    }

    /// The report of a media migration, as text or JSON; exit status 1 unless it is done.
    func printMediaOutcome(_ session: MediaSessionID, _ last: MediaMigrationStatus?) throws {
        guard let last else { throw RuntimeFailure("migrate", "no report of \(session)'s migration") }
        if json {
            try printJSON(last)
        } else {
            let r = last.report
            let phases = r.phases.map { "\($0.phase.rawValue) +\(String(format: "%.3f", $0.seconds))s" }.joined(separator: ", ")
            var line = "\(session): \(r.phase.rawValue) (\(phases))"
            if let seq = r.switchedAtSequence, let ts = r.switchedAtTimestamp { line += "; switched at RTP seq \(seq) timestamp \(ts)" }
            line += "; frames skipped \(r.framesSkipped)"
            if let reason = r.reason { line += "; \(reason)" }
            print(line)
        }
        if last.report.phase != .done { throw ExitCode(1) }
    }
}
