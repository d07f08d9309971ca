import Foundation
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

    /// Runs `command` with `/bin/sh -c`, the environment added; its exit status, or nil when it
    /// ran past `timeout` (it is then terminated) or could not start.
    static func runHook(_ command: String, environment: [String: String], timeout: Duration) async -> Int32? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        let done = AsyncStream<Int32>.makeStream()
        process.terminationHandler = { p in
            done.continuation.yield(p.terminationStatus)
            done.continuation.finish()
        }
        do { try process.run() } catch { return nil }
        let timer = Task {
            try await Task.sleep(for: timeout)
            if process.isRunning { process.terminate() }
        }
        defer { timer.cancel() }
        var iterator = done.stream.makeAsyncIterator()
        guard let status = await iterator.next() else { return nil }
        return process.terminationReason == .uncaughtSignal ? nil : status
    }
}
