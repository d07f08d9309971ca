import ArgumentParser
import Foundation

/// What `--watch` commands share: refresh until Ctrl-C (or `--count` refreshes), and leave
/// cleanly on SIGINT: what was printed is flushed (a pipe into `jq` gets whole lines) and the
/// exit status is 0, as `watch` and `conntrack -E` do.
enum WatchLoop {
    nonisolated(unsafe) private static var interruptSource: (any DispatchSourceSignal)?

    /// From now on SIGINT flushes stdout and exits 0.
    static func exitCleanlyOnInterrupt() {
        guard interruptSource == nil else { return }
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            fflush(nil)
            exit(0)
        }
        source.resume()
        interruptSource = source
    }

    /// Runs `body` every `interval` seconds, `count` times (nil: until Ctrl-C).
    static func run(interval: Double, count: Int?, _ body: () throws -> Void) throws {
        exitCleanlyOnInterrupt()
        var done = 0
        while true {
            try body()
            fflush(nil)
            done += 1
            if let count, done >= count { return }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// What a text refresh starts with: the screen cleared on a terminal, a time line otherwise.
    static func refreshHeader(_ what: String) -> String {
        let now = ISO8601DateFormatter().string(from: Date())
        return isatty(STDOUT_FILENO) != 0 ? "\u{1B}[H\u{1B}[2J\(what) at \(now) (Ctrl-C to stop)\n" : "\n\(what) at \(now)\n"
    }

    static func validate(interval: Double, count: Int?) throws {
        guard interval >= 0.1 && interval <= 3600 else { throw ValidationError("--interval must be within [0.1, 3600] seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    /// One compact JSON object on its own line (`jq` reads a stream of them).
    static func jsonLine(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
