import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Namespace

/// The agent's side of a Video Sharing Request (SMP draft §5.1): the proxy forwards a share;
/// the agent runs the device's `--on-share` hook with the URL in its environment
/// (`TSMP_SHARE_URL`, `TSMP_SHARE_FROM`, `TSMP_SHARE_TO`, `TSMP_SHARE_MODE`); its exit status
/// is the answer (0: accepted; the hook starts the player and returns). Without a hook every
/// share is declined. Only a proxy may send one, only for this device.
extension Agent {
    /// How long a hook may take to decide.
    public static let shareHookTimeout: Duration = .seconds(20)

    func share(_ request: HTTPEndpoint.Request) async -> HTTPEndpoint.Response {
        guard let peer = request.peer else { return Self.noIdentity }
        guard peer.role == .proxy else { return .error(.forbidden, "only a proxy forwards shares (you are \(peer))") }
        return await Self.answering(status: .ok) { [self] in
            let offer = try Self.decode(ShareOffer.self, request)
            guard offer.to == did else { throw RouteRefusal(.badRequest, "this agent is \(did), not \(offer.to)") }
            _ = try VideoShareRequest.checkedURL(offer.url)
            guard let hook = options.onShare else {
                logger.info("share declined: no --on-share hook", metadata: ["from": "\(offer.from)", "url": "\(offer.url)"])
                return ShareVerdict(accepted: false, reason: "\(did) takes no shares (its agent runs without --on-share)")
            }
            let status = await Self.runHook(hook, environment: [
                "TSMP_SHARE_URL": offer.url, "TSMP_SHARE_FROM": offer.from.description,
                "TSMP_SHARE_TO": offer.to.description, "TSMP_SHARE_MODE": offer.mode.rawValue,
            ], timeout: Self.shareHookTimeout)
            logger.info("share offered", metadata: [
                "from": "\(offer.from)", "url": "\(offer.url)", "hook.status": "\(status.map(String.init) ?? "timeout")",
            ])
            switch status {
            case 0?: return ShareVerdict(accepted: true, reason: nil)
            case let code?: return ShareVerdict(accepted: false, reason: "\(did) declined (its hook exited with \(code))")
            case nil: return ShareVerdict(accepted: false, reason: "\(did) did not decide within \(Self.shareHookTimeout)")
            }
        }
    }

    /// Runs `command` with `/bin/sh -c`, stdin /dev/null, the environment added; its exit
    /// status, or nil when it was killed by a signal, ran past `timeout` (it is then sent
    /// SIGKILL) or could not start. posix_spawn and waitpid rather than Foundation's Process:
    /// Process reports the end only when every copy of its internal descriptor is closed, which
    /// a player the hook leaves running in the background (`player "$URL" & exit 0`) inherits.
    static func runHook(_ command: String, environment: [String: String], timeout: Duration) async -> Int32? {
        let merged = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let arguments: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp) == 0 else { return nil }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return nil }
            if clock.now >= deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return nil
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // Exited normally: the low 7 bits are 0 and the code is the next byte (WIFEXITED, WEXITSTATUS).
        return status & 0x7f == 0 ? (status >> 8) & 0xff : nil
    }
}
