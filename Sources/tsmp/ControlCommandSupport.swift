import ArgumentParser
import ControlPlane
import Foundation
import Namespace
import NIOPosix
import Wire

/// `--insecure-lab`, shared by every command that speaks to the control plane.
struct InsecureLabOption: ParsableArguments {
    @Flag(help: "Plain HTTP with the identity in a header instead of mutual TLS. Test labs only: anyone on the path can read and forge requests.")
    var insecureLab = false

    func check(_ url: String, _ flag: String) throws {
        if url.hasPrefix("http://") && !insecureLab {
            throw ValidationError("\(flag) \(url) is plain HTTP: add --insecure-lab (test labs only) or use https://")
        }
        if url.hasPrefix("https://") && insecureLab {
            throw ValidationError("--insecure-lab speaks plain HTTP: give \(flag) as http://...")
        }
        if !url.hasPrefix("http://") && !url.hasPrefix("https://") {
            throw ValidationError("\(flag) must be an http(s)://HOST:PORT URL, HOST \(HostPort.expected), not \"\(url)\"")
        }
        do { _ = try HostPort(url: url, flag: flag) } catch { throw ValidationError(error.description) }
    }
}

/// What a command a device sends to its namespace takes: the device's credential
/// (`--credentials`) and `--insecure-lab`.
struct DeviceCredentialOptions: ParsableArguments {
    @Option(help: "This device's credential.")
    var credentials: String

    @OptionGroup var lab: InsecureLabOption

    func credential(_ command: String) throws -> Credential { try loadCredential(credentials, command: command) }
    func deviceCredential(_ command: String) throws -> (Credential, DeviceID) { try loadDeviceCredential(credentials, command: command) }

    /// One exchange with the namespace as `credential`; a failure is reported under `command`.
    func send<T: Sendable>(_ credential: Credential, _ command: String,
                           _ body: @escaping @Sendable (PeerClient) async throws -> T) async throws -> T {
        try await sendToNamespace(credential, lab.insecureLab, command, body)
    }
}

/// Loads a credential file, as a `RuntimeFailure` naming the command and the file.
func loadCredential(_ path: String, command: String) throws -> Credential {
    do {
        return try Credential.load(from: path)
    } catch {
        throw RuntimeFailure(command, "credentials \(path): \(error)")
    }
}

/// Loads a device's credential and its DID; another role's credential is refused by name.
func loadDeviceCredential(_ path: String, command: String) throws -> (Credential, DeviceID) {
    let credential = try loadCredential(path, command: command)
    guard credential.identity.role == .device, let did = try? DeviceID(credential.identity.name) else {
        throw RuntimeFailure(command, "\(path) is a credential of \(credential.identity), not of a device")
    }
    return (credential, did)
}

/// Runs `body` with a one-thread event loop group that is shut down afterwards.
func withEventLoop<T>(_ body: (MultiThreadedEventLoopGroup) async throws -> T) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        let value = try await body(group)
        try? await group.shutdownGracefully()
        return value
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}

/// Prints a value as sorted, pretty JSON on stdout.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

extension HostPort {
    /// HOST:PORT given to `flag`, refused as ArgumentParser shows it.
    static func argument(_ text: String, flag: String, allowPortZero: Bool = false) throws -> HostPort {
        do { return try HostPort(parsing: text, flag: flag, allowPortZero: allowPortZero) } catch { throw ValidationError(error.description) }
    }
}

/// ADDR:PORT for --listen options: where a service binds (port 0: one the kernel picks).
struct ListenAddress: CustomStringConvertible {
    var host: String
    var port: Int
    init(parsing text: String, flag: String = "--listen") throws {
        let parsed = try HostPort.argument(text, flag: flag, allowPortZero: true)
        host = parsed.host
        port = parsed.port
    }
    /// Every address of a family (0.0.0.0, ::): reachable, but not at that address.
    var isWildcard: Bool {
        switch IPAddress(host) {
        case .v4(let a): a.value == 0
        case .v6(let a): a.high == 0 && a.low == 0
        case nil: false
        }
    }
    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
