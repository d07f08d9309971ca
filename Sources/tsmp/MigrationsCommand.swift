import ArgumentParser
import Engine
import Foundation
import Gateway
import GatewayHost

/// `tsmp migrations`: what the proxy migrated lately and what it migrates now.
struct MigrationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrations",
        abstract: "List the running and recent migrations of the proxy on this gateway.",
        discussion: """
        Asks the running proxy's local control socket (root only). Each migration shows its \
        phase (or how it ended: spliced, rolled-back, aborted), the old and new device, the \
        time to its last phase, how long the server was paused (STALL), the bytes the proxy \
        delivered from its cache and the cut offsets (bytes of each stream before the cut). \
        The proxy keeps the last 1000 finished migrations per queue; --limit says how many to show.

        --show ID prints one migration with the time of each phase and why it rolled back. \
        --watch refreshes every --interval seconds until Ctrl-C (with --json: one object per line).

        Examples:
          tsmp migrations
          tsmp migrations --show 3
          tsmp migrations --show 3 --svg migration-3.svg
          tsmp migrations --json | jq '.migrations[] | select(.phase == "rolled-back") | .reason'
          tsmp migrations --watch --interval 0.5
        """)

    @Option(help: ArgumentHelp("The proxy's control socket (default: the one proxy running in this network namespace; root only).",
                               valueName: "path"))
    var control: String?

    @Flag(help: "Print JSON ({migrations: [...], running}); with --watch one compact object per line.")
    var json = false

    @Option(help: ArgumentHelp("Print one migration with its phases.", valueName: "id"))
    var show: UInt64?

    @Option(help: ArgumentHelp("With --show: draw its sequence-time graph (both sub-connections, the phases, the cut) into this SVG file.",
                               valueName: "file"))
    var svg: String?

    @Flag(help: "Refresh until Ctrl-C.")
    var watch = false

    @Option(help: "Seconds between refreshes (--watch).")
    var interval: Double = 1

    @Option(help: "Stop after this many refreshes (--watch).")
    var count: Int?

    @Option(help: "Finished migrations to show at most (running ones are always shown).")
    var limit: Int = MigrationListing.defaultLimit

    func validate() throws {
        if let control, let problem = LocalControlSocket.validate(control) { throw ValidationError(problem) }
        try WatchLoop.validate(interval: interval, count: count)
        guard (0...MigrationListing.maximumLimit).contains(limit) else {
            throw ValidationError("--limit must be within [0, \(MigrationListing.maximumLimit)]")
        }
        if show != nil && watch { throw ValidationError("--show prints one migration; leave out --watch") }
        if count != nil && !watch { throw ValidationError("--count goes with --watch") }
        if svg != nil && show == nil { throw ValidationError("--svg draws one migration: give --show ID") }
        if let svg, svg.isEmpty { throw ValidationError("--svg needs a file name") }
    }

    func run() throws {
        try Self.reportingFailures {
            do {
                let client = ControlClient(socketPath: try control ?? ControlClient.discover())
                if let show { return try showOne(MigrationID(show), client) }
                if !watch { return try printListing(client, compact: false) }
                try WatchLoop.run(interval: interval, count: count) { try printListing(client, compact: true) }
            } catch let failure as RuntimeFailure {
                throw failure
            } catch {
                throw RuntimeFailure("migrations", "\(error)")
            }
        }
    }

    private func printListing(_ client: ControlClient, compact: Bool) throws {
        let listing = try client.get("/v1/migrations?limit=\(limit)", as: MigrationListing.self)
        if json {
            if compact { print(try WatchLoop.jsonLine(listing)) } else { try printJSON(listing) }
        } else {
            if watch { print(WatchLoop.refreshHeader("tsmp migrations"), terminator: "") }
            print(listing.migrations.isEmpty ? "no migrations yet" : OperatorText.migrationTable(listing))
        }
    }

    private func showOne(_ id: MigrationID, _ client: ControlClient) throws {
        if let svg {
            let picture = try client.get("/v1/migrations/timeline?id=\(id)", as: MigrationPicture.self)
            do {
                try Data(MigrationSVG.render(picture.report, picture.timeline).utf8).write(to: URL(fileURLWithPath: svg))
            } catch {
                throw RuntimeFailure("migrations", "--svg \(svg): cannot write: \((error as NSError).localizedDescription)")
            }
            print("migration \(id): \(picture.timeline.points.count) packets drawn into \(svg)")
            return
        }
        let reports = try client.get("/v1/migrations?id=\(id)", as: MigrationReports.self).migrations
        guard let r = reports.first else {
            throw RuntimeFailure("migrations", "migration \(id) is not known to the proxy (it keeps the last 1000 finished per queue)")
        }
        if json { try printJSON(r) } else { print(MigrationText.render(r)) }
    }
}
