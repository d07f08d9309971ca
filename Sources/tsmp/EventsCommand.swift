import ArgumentParser
import Forwarding
import Foundation
import Gateway
import GatewayHost

/// `tsmp events`: flows and migrations as they happen, like `conntrack -E`.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Follow the proxy's flows and migrations as they happen.",
        discussion: """
        Asks the running proxy's local control socket (root only) and prints one line per \
        event until Ctrl-C: [NEW] and [DESTROY] for managed flows, [MIGRATION] for each \
        phase a migration enters (requested, paused, old-device-cut, new-device-connected, \
        cache-drained, spliced, rolled-back, aborted). The proxy keeps its last 4096 events per \
        queue; a reader that falls further behind is told how many it missed (on stderr).

        Examples:
          tsmp events
          tsmp events --json | jq -c 'select(.event.kind == "migration-phase")'
          tsmp events --replay --timeout 5
        """)

    @Option(help: ArgumentHelp("The proxy's control socket (default: the one proxy running in this network namespace; root only).",
                               valueName: "path"))
    var control: String?

    @Flag(help: "One JSON object per event and line: {time, shard, event: {seq, kind, flow, ...}}.")
    var json = false

    @Flag(help: "Start with the events the proxy still holds, then follow.")
    var replay = false

    @Option(help: "Stop after this many events.")
    var count: Int?

    @Option(help: "Stop after this many seconds.")
    var timeout: Double?

    func validate() throws {
        if let control, let problem = LocalControlSocket.validate(control) { throw ValidationError(problem) }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let timeout, !(timeout > 0 && timeout <= 86_400) { throw ValidationError("--timeout must be within (0, 86400] seconds") }
    }

    func run() throws {
        try Self.reportingFailures {
            do {
                try follow(ControlClient(socketPath: try control ?? ControlClient.discover()))
            } catch let failure as RuntimeFailure {
                throw failure
            } catch {
                throw RuntimeFailure("events", "\(error)")
            }
        }
    }

    private func follow(_ client: ControlClient) throws {
        WatchLoop.exitCleanlyOnInterrupt()
        let until = timeout.map { Date().addingTimeInterval($0) }
        var cursor = replay ? "start" : try client.get("/v1/events", as: EventBatch.self).cursor
        var printed = 0
        while true {
            // The long poll stays well inside the client's 10 s receive timeout.
            let left = until.map { $0.timeIntervalSinceNow } ?? 5
            if left <= 0 { return }
            let wait = String(format: "%.1f", min(5, max(0.1, left)))
            let batch = try client.get("/v1/events?after=\(cursor)&wait=\(wait)", as: EventBatch.self)
            if batch.lost > 0 {
                FileHandle.standardError.write(Data("tsmp events: \(batch.lost) events missed (the proxy's journal moved on)\n".utf8))
            }
            for record in batch.events {
                print(json ? try WatchLoop.jsonLine(record) : OperatorText.eventLine(record))
                printed += 1
                if let count, printed >= count { fflush(nil); return }
            }
            fflush(nil)
            cursor = batch.cursor
        }
    }
}
