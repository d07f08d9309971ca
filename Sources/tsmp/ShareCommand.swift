import ArgumentParser
import ControlPlane
import Foundation
import Namespace

/// `tsmp share`: the Video Sharing Request (SMP draft §5.1) from this device.
struct ShareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "share",
        abstract: "Share a URL with a friend's best device(s), or one of your own devices (VSR).",
        discussion: """
        --to takes a UID (a friend, or yourself: your devices best first by the ranking in \
        force) or a DID (NAME.UID: one device). An e-mail with a dot before the @ is read as a \
        DID; add --user to read it as a UID. The proxy forwards the share to each target's \
        agent, whose --on-share hook accepts (exit 0) or declines; each answer is printed. \
        Only friends may share with a user.

        Examples:
          tsmp share --credentials laptop.cred --proxy https://10.1.0.1:7444 --to bob@example.com http://10.9.0.2/clip.mp4
          tsmp share --credentials laptop.cred --proxy https://10.1.0.1:7444 --to bob@example.com --mode broadcast rtsp://cam/1
        """)

    @Option(help: "This device's credential.")
    var credentials: String

    @Option(help: "The proxy's device-facing URL.")
    var proxy: String

    @Option(help: "A UID (user) or a DID (one device).")
    var to: String

    @Flag(help: "Read --to as a UID even when it looks like a DID.")
    var user = false

    @Option(help: "anycast (the best device; default), multicast (the --count best) or broadcast (every online device).")
    var mode: String = "anycast"

    @Option(help: "Multicast: how many devices (default 2).")
    var count: Int?

    @Argument(help: "The URL to share (http, https or rtsp).")
    var url: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var lab: InsecureLabOption

    func validate() throws {
        try lab.check(proxy, "--proxy")
        guard ShareMode(rawValue: mode) != nil else { throw ValidationError("--mode must be anycast, multicast or broadcast") }
        if count != nil && mode != "multicast" { throw ValidationError("--count is for --mode multicast") }
    }

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let mine = try loadCredential(credentials, command: "share")
        var request = VideoShareRequest(url: url, mode: ShareMode(rawValue: mode), count: count)
        do {
            let local = to.split(separator: "@").first ?? ""
            if !user && local.contains(".") { request.toDevice = try DeviceID(to) } else { request.toUser = try UserID(to) }
            _ = try VideoShareRequest.checkedURL(url)
        } catch {
            throw RuntimeFailure("share", "\(error)")
        }
        let answer: VideoShareAnswer
        do {
            answer = try await withEventLoop { group in
                let link = try PeerClient(baseURL: proxy, credential: mine, insecureLab: lab.insecureLab, expectedServer: .role(.proxy),
                                          group: group, timeout: .seconds(60))
                return try await link.call("POST", "/v1/vsr", json: request)
            }
        } catch {
            throw RuntimeFailure("share", "\(error)")
        }
        if json { return try printJSON(answer) }
        for target in answer.targets {
            print("\(target.device): " + (target.accepted ? "accepted" : "not accepted (\(target.reason ?? "no reason given"))"))
        }
        if !answer.targets.contains(where: \.accepted) { throw ExitCode(3) }
    }
}
