import ArgumentParser
import ControlPlane
import Engine
import Forwarding
import Foundation
import Gateway
import Media
import GatewayHost
import Wire

struct FlowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "List the flows the proxy manages.",
        discussion: """
        On the gateway (as root), asks the running proxy's local control socket; succeeds once the \
        proxy forwards, so scripts can use it as a readiness check. From a device \
        (--credentials, --proxy), asks the proxy's device-facing endpoint for this device's \
        flows (or --device, another device of the same user).

        Columns: ID, STATE, DEVICE (the device's endpoint), DESTINATION (what the device \
        connected to), NAT (the proxy's endpoint the server sees), SERVER, bytes each way, \
        IDLE seconds.

        Examples:
          tsmp flows
          tsmp flows --json | jq '.flows[] | select(.state == "established")'
          tsmp flows --watch --interval 0.5
          tsmp flows --json --watch | jq -c '.status.flows'
          tsmp flows --credentials laptop.cred --proxy https://10.1.0.1:7444
        """)

    @Option(help: ArgumentHelp("The proxy's control socket (default: the one proxy running in this network namespace; root only).",
                               valueName: "path"))
    var control: String?

    @Flag(help: "Print JSON: {flows: [...], status: {...}} (from a device: {device, address, flows}).")
    var json = false

    @Flag(help: "Refresh until Ctrl-C (gateway mode; with --json one compact object per line, for jq).")
    var watch = false

    @Option(help: "Seconds between refreshes (--watch).")
    var interval: Double = 1

    @Option(help: "Stop after this many refreshes (--watch).")
    var count: Int?

    @Option(help: "This device's credential (device mode).")
    var credentials: String?

    @Option(help: "The proxy's device-facing URL (device mode).")
    var proxy: String?

    @Option(help: "Another device of your user (device mode).")
    var device: String?

    @OptionGroup var lab: InsecureLabOption

    func validate() throws {
        if (credentials == nil) != (proxy == nil) { throw ValidationError("--credentials and --proxy go together (device mode)") }
        if device != nil && credentials == nil { throw ValidationError("--device needs --credentials and --proxy") }
        if let proxy { try lab.check(proxy, "--proxy") }
        if let control, let problem = LocalControlSocket.validate(control) { throw ValidationError(problem) }
        try WatchLoop.validate(interval: interval, count: count)
        if watch && credentials != nil { throw ValidationError("--watch is for the gateway's local endpoint, not device mode") }
        if count != nil && !watch { throw ValidationError("--count goes with --watch") }
    }

    func run() async throws {
        if credentials != nil { try await Self.reportingFailures(runAsDevice) } else { try Self.reportingFailures(runOrFail) }
    }

    private func runAsDevice() async throws {
        let credential = try loadCredential(credentials!, command: "flows")
        let flows: DeviceFlows
        do {
            flows = try await withEventLoop { group in
                let link = try PeerClient(baseURL: proxy!, credential: credential, insecureLab: lab.insecureLab,
                                          expectedServer: .role(.proxy), group: group)
                return try await link.call("GET", "/v1/device/flows", query: device.map { ["device": $0] } ?? [:])
            }
        } catch {
            throw RuntimeFailure("flows", "\(error)")
        }
        if json { return try printJSON(flows) }
        print("\(flows.device) at \(flows.address): \(flows.flows.count) flow\(flows.flows.count == 1 ? "" : "s")")
        if !flows.flows.isEmpty { print(FlowTableText.rows(flows.flows)) }
        if let media = flows.media, !media.isEmpty {
            print("\(media.count) media session\(media.count == 1 ? "" : "s")")
            print(FlowTableText.mediaRows(media))
        }
    }

    private func runOrFail() throws {
        do {
            let client = ControlClient(socketPath: try control ?? ControlClient.discover())
            if watch { return try WatchLoop.run(interval: interval, count: count) { try printOnce(client) } }
            try printOnce(client)
        } catch {
            throw RuntimeFailure("flows", "\(error)")
        }
    }

    /// One listing: the API's JSON as it came (one line), or the table.
    private func printOnce(_ client: ControlClient) throws {
        if json {
            let (status, body) = try client.request("GET", "/v1/flows")
            guard status == 200 else { throw ControlClient.Failure(description: "the proxy answered HTTP \(status): \(String(decoding: body, as: UTF8.self))") }
            FileHandle.standardOutput.write(Data(body))
            return
        }
        let listing = try client.get("/v1/flows", as: FlowListing.self)
        if watch { print(WatchLoop.refreshHeader("tsmp flows"), terminator: "") }
        print(FlowTableText.render(listing))
    }
}

/// The human-readable table of `tsmp flows`.
enum FlowTableText {
    static func render(_ listing: FlowListing) -> String {
        var out = rows(listing.flows)
        let s = listing.status
        out += "\n\n\(s.flows) flows, NAT ports \(s.natPortsInUse)/\(s.natPortsCapacity), "
        out += "\(s.packetsForwarded) packets forwarded, \(s.packetsPassedThrough) passed through"
        if s.kernelPathEntered > 0 { out += ", \(s.kernelPathFlows) in the kernel path (\(s.kernelPathEntered) handed over, \(s.kernelPathLeft) taken back)" }
        let drops = s.drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        out += drops.isEmpty ? ", no drops" : ", drops: \(drops)"
        if let media = listing.media, !media.isEmpty { out += "\n\n" + mediaRows(media) }
        return out
    }

    /// The media relay's sessions (kind rtsp): codec, packets, and the loss and jitter of the
    /// player's latest RTCP receiver report.
    static func mediaRows(_ sessions: [MediaSessionSummary]) -> String {
        var rows: [[String]] = [["ID", "KIND", "STATE", "DEVICE", "URL", "CODEC", "PACKETS", "LOSS", "JITTER"]]
        for s in sessions {
            var state = s.state
            if let phase = s.migration { state += ",migrating:\(phase.rawValue)" + (s.migratingTo.map { "->\($0)" } ?? "") }
            var loss = s.fractionLost.map { String(format: "%.1f%%", $0 * 100) } ?? "-"
            if let alert = s.alertFractionLost { loss += String(format: " (alert at %.1f%%)", alert * 100) }
            rows.append([s.id.description, s.kind, state, s.device, s.url, s.codec ?? "-", "\(s.packets)", loss,
                         s.jitter.map(String.init) ?? "-"])
        }
        let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        return rows.map { r in r.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
    }

    static func rows(_ flows: [FlowSummary]) -> String {
        var rows: [[String]] = [["ID", "STATE", "DEVICE", "DESTINATION", "NAT", "SERVER", "TO-SERVER", "TO-DEVICE", "IDLE"]]
        for f in flows {
            var state = f.migrationPhase.map { "\(f.state.rawValue),migrating:\($0.rawValue)" } ?? f.state.rawValue
            if f.inKernel == true { state += ",kernel" } // forwarded by the kernel path
            rows.append([f.id.description, state, f.device.description, f.original.description,
                         f.nat.description, f.server.description, bytes(f.bytesToServer), bytes(f.bytesToDevice),
                         String(format: "%.1fs", f.idleSeconds)])
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func bytes(_ n: UInt64) -> String {
        switch n {
        case ..<10_000: return "\(n) B"
        case ..<10_000_000: return String(format: "%.1f kB", Double(n) / 1e3)
        default: return String(format: "%.1f MB", Double(n) / 1e6)
        }
    }
}
