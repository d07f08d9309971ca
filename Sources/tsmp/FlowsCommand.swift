import ArgumentParser
import Engine
import Foundation
import Gateway
import Wire

struct FlowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flows",
        abstract: "List the flows the proxy manages.",
        discussion: """
        Asks the running proxy's local control endpoint. Succeeds once the proxy forwards, so \
        scripts can use it as a readiness check.

        Columns: ID, STATE, DEVICE (the device's endpoint), DESTINATION (what the device \
        connected to), NAT (the proxy's endpoint the server sees), SERVER, bytes each way, \
        IDLE seconds.

        Examples:
          tsmp flows
          tsmp flows --json | jq '.flows[] | select(.state == "established")'
        """)

    @Option(help: "The proxy's control endpoint.")
    var control: IPv4Endpoint = ProxyDefaults.control

    @Flag(help: "Print JSON: {flows: [...], status: {...}}.")
    var json = false

    func run() throws { try Self.reportingFailures(runOrFail) }

    private func runOrFail() throws {
        let client = ControlClient(endpoint: control)
        do {
            if json {
                let (status, body) = try client.request("GET", "/v1/flows")
                guard status == 200 else { throw ControlClient.Failure(description: "the proxy answered HTTP \(status): \(String(decoding: body, as: UTF8.self))") }
                FileHandle.standardOutput.write(Data(body))
                return
            }
            let listing = try client.get("/v1/flows", as: FlowListing.self)
            print(FlowTableText.render(listing))
        } catch {
            throw RuntimeFailure("flows", "\(error)")
        }
    }
}

/// The human-readable table of `tsmp flows`.
enum FlowTableText {
    static func render(_ listing: FlowListing) -> String {
        var rows: [[String]] = [["ID", "STATE", "DEVICE", "DESTINATION", "NAT", "SERVER", "TO-SERVER", "TO-DEVICE", "IDLE"]]
        for f in listing.flows {
            let state = f.migrationPhase.map { "\(f.state.rawValue),migrating:\($0.rawValue)" } ?? f.state.rawValue
            rows.append([f.id.description, state, f.device.description, f.original.description,
                         f.nat.description, f.server.description, bytes(f.bytesToServer), bytes(f.bytesToDevice),
                         String(format: "%.1fs", f.idleSeconds)])
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        var out = rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
        let s = listing.status
        out += "\n\n\(s.flows) flows, NAT ports \(s.natPortsInUse)/\(s.natPortsCapacity), "
        out += "\(s.packetsForwarded) packets forwarded, \(s.packetsPassedThrough) passed through"
        let drops = s.drops.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        out += drops.isEmpty ? ", no drops" : ", drops: \(drops)"
        return out
    }

    static func bytes(_ n: UInt64) -> String {
        switch n {
        case ..<10_000: return "\(n) B"
        case ..<10_000_000: return String(format: "%.1f kB", Double(n) / 1e3)
        default: return String(format: "%.1f MB", Double(n) / 1e6)
        }
    }
}
