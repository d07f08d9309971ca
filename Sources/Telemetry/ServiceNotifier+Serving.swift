import Logging

extension ServiceNotifier {
    /// What a service says once it serves: `READY=1` with `status`, then the watchdog's pings
    /// while `isWell()` (when the unit sets `WatchdogSec=`). Not being able to tell systemd is
    /// logged, never fatal: the service itself works. Cancel the returned task on the way out.
    public func serving(status: String, logger: Logger, isWell: @escaping @Sendable () async -> Bool = { true }) -> Task<Void, Never>? {
        do {
            if try ready(status: status) {
                logger.debug("told systemd: ready", metadata: ["notify.socket": "\(socketName ?? "")"])
            }
        } catch {
            logger.warning("could not tell systemd the service is ready", metadata: ["error": "\(error)"])
        }
        return watchdog(isWell: isWell)
    }

    /// `STOPPING=1` and the end of the watchdog's pings.
    public func leaving(watchdog: Task<Void, Never>?, logger: Logger) {
        watchdog?.cancel()
        do {
            try stopping()
        } catch {
            logger.debug("could not tell systemd the service is stopping", metadata: ["error": "\(error)"])
        }
    }
}
