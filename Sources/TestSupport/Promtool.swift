import Foundation

/// `promtool check metrics` (package prometheus) on a metrics text, for the tests of every
/// service's metrics. Runs on a Dispatch thread: blocking one of the concurrency pool's
/// threads for seconds would starve the loopback servers of the tests running beside it.
public enum Promtool {
    /// The installed promtool, if any (tests are skipped without it).
    public static let path = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// promtool's exit status and what it printed (empty when the text is clean).
    public static func check(_ text: String) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { c in
            DispatchQueue.global().async { c.resume(with: Result { try run(text) }) }
        }
    }

    private static func run(_ text: String) throws -> (status: Int32, output: String) {
        guard let path else { throw CocoaError(.fileNoSuchFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, said)
    }
}
