import CShims
import Foundation
import PacketIO

/// Runs code inside a named network namespace (`ip netns add NAME`, /run/netns/NAME) without
/// moving the process: a fresh thread enters the namespace, runs the body, and ends.
///
/// Netlink sockets opened and /proc/sys/net files read or written on that thread belong to
/// the namespace; the rest of the process stays where it was. The body must not hop threads
/// (no `await`), and nothing it starts on other threads is in the namespace.
public enum NetlinkNamespace {
    /// The namespace's file under /run/netns.
    public static func path(of name: String) -> String { "/run/netns/\(name)" }

    /// Runs `body` on a new thread inside namespace `name` and returns its result. Throws
    /// `SystemError` ("enter network namespace NAME") if the thread cannot get there, in which
    /// case `body` does not run.
    public static func run<Result: Sendable>(in name: String,
                                             _ body: @escaping @Sendable () throws -> Result) throws -> Result {
        let outcome = Outcome<Result>()
        let finished = DispatchSemaphore(value: 0)
        let path = Self.path(of: name)
        let thread = Thread {
            defer { finished.signal() }
            let entered = tsmp_nl_enter_netns(path)
            guard entered == 0 else {
                outcome.value = .failure(SystemError("enter network namespace \(name)", errno: -entered))
                return
            }
            outcome.value = Swift.Result { try body() }
        }
        thread.name = "netns \(name)"
        thread.start()
        finished.wait()
        guard let value = outcome.value else { fatalError("namespace thread ended without a result") }
        return try value.get()
    }

    /// The thread's result, handed over through the semaphore (which orders the accesses).
    private final class Outcome<Value: Sendable>: @unchecked Sendable {
        var value: Swift.Result<Value, any Error>?
    }
}
