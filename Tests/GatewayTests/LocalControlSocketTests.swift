#if canImport(Glibc)
import Glibc
#endif
import ControlPlane
import Engine
import Dispatch
import Foundation
import Gateway
import GatewayHost
import PacketIO
import Testing
import Wire

/// The proxy's local control endpoint is a root-only Unix socket (issue "Control-plane
/// security", finding 2: on 127.0.0.1:7464 every local user listed and moved flows). The
/// attacker's test first: uid 65534 on the same machine, as `setpriv` makes it.
@Suite("Local control socket: root only")
struct LocalControlSocketTests {
    static let nobody = "65534"

    /// Runs `setpriv --reuid 65534 ... curl ...` against the socket: (curl's exit status, body).
    /// On a Dispatch thread: blocking the concurrency pool (two threads here) would starve
    /// every other test's endpoint handlers.
    static func asNobody(curl arguments: [String]) async throws -> (status: Int32, body: String) {
        try await withCheckedThrowingContinuation { c in
            DispatchQueue.global().async { c.resume(with: Result { try runAsNobody(curl: arguments) }) }
        }
    }

    static func runAsNobody(curl arguments: [String]) throws -> (status: Int32, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid", nobody, "--regid", nobody, "--clear-groups", "/usr/bin/curl", "-s", "--max-time", "5"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let body = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: body, as: UTF8.self))
    }

    static var canSwitchUsers: Bool {
        geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
    }

    @Test("the socket is mode 0600 and root gets answers", .timeLimit(.minutes(1)))
    func rootIsAnswered() async throws {
        let proxy = try await ControlAPITests.Proxy()
        let path = proxy.client.socketPath
        var st = stat()
        #expect(lstat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let listing = try await proxy.listing()
        #expect(listing.flows.count == 1)
        await proxy.stop()
        #expect(lstat(path, &st) != 0, "closing the endpoint removes its socket")
    }

    @Test("another local user can't connect (EACCES) and, past a loosened mode, gets a 403 with the reason; nothing changes",
          .enabled(if: canSwitchUsers), .timeLimit(.minutes(1)))
    func otherUsersAreRefused() async throws {
        let proxy = try await ControlAPITests.Proxy()
        let before = try await proxy.listing()
        let path = proxy.client.socketPath
        // The socket's directory must let uid 65534 reach the file for the test to mean anything.
        chmod(proxy.directory, 0o755)
        let denied = try await Self.asNobody(curl: ["--unix-socket", path, "http://tsmp/v1/flows"])
        #expect(denied.status == 7, "curl could connect as uid 65534: \(denied.body)")
        #expect(denied.body.isEmpty)
        // The file mode loosened by hand: SO_PEERCRED still refuses before any request is read.
        #expect(chmod(path, 0o666) == 0)
        let listed = try await Self.asNobody(curl: ["--unix-socket", path, "http://tsmp/v1/flows"])
        #expect(listed.body.contains("the proxy's control socket is for root only (you are uid 65534)"), "\(listed)")
        #expect(!listed.body.contains("10.1.0.2"))
        let id = before.flows[0].id
        let moved = try await Self.asNobody(curl: ["--unix-socket", path, "-X", "POST", "-H", "Content-Type: application/json",
                                             "--data", #"{"flows":[\#(id.rawValue)],"toAddress":"10.3.0.2","deadlineSeconds":5}"#,
                                             "http://tsmp/v1/migrations"])
        #expect(moved.body.contains("root only"), "\(moved)")
        let after = try await proxy.listing()
        #expect(after.flows.map(\.id) == before.flows.map(\.id))
        #expect(after.flows.allSatisfy { $0.migration == nil })
        await proxy.stop()
    }

    @Test("SO_PEERCRED reads this process's pid and uid into PeerProcessCredentials (the struct ucred layout)")
    func peerCredentialLayout() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var credentials = PeerProcessCredentials(pid: 0, uid: 12345, gid: 12345)
        var length = socklen_t(MemoryLayout<PeerProcessCredentials>.size)
        #expect(length == 12)
        #expect(getsockopt(fds[0], SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0)
        #expect(credentials == PeerProcessCredentials(pid: getpid(), uid: geteuid(), gid: getegid()))
    }

    @Test("a socket left by a dead proxy is replaced; a live one or a plain file is refused")
    func staleAndLiveSockets() async throws {
        let proxy = try await ControlAPITests.Proxy()
        let path = proxy.client.socketPath
        await #expect(throws: HTTPEndpoint.LocalSocketError.self) {
            _ = try await HTTPEndpoint.startLocal(path: path, allowedUIDs: [0], group: proxy.group, logger: .init(label: "test"), routes: [:])
        }
        // A dead proxy's socket: a bound socket nobody listens on.
        let stale = proxy.directory + "/stale.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sun.sun_path) { raw in raw.copyBytes(from: Array(stale.utf8) + [0]) }
        let bound = withUnsafePointer(to: &sun) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(fd)
        let replaced = try await HTTPEndpoint.startLocal(path: stale, allowedUIDs: [0], group: proxy.group, logger: .init(label: "test"), routes: [:])
        await replaced.close()
        let plain = proxy.directory + "/plain.sock"
        FileManager.default.createFile(atPath: plain, contents: Data("x".utf8))
        await #expect(throws: HTTPEndpoint.LocalSocketError.self) {
            _ = try await HTTPEndpoint.startLocal(path: plain, allowedUIDs: [0], group: proxy.group, logger: .init(label: "test"), routes: [:])
        }
        #expect(FileManager.default.fileExists(atPath: plain), "a file that is not a socket is never removed")
        await proxy.stop()
    }

    @Test("the CLI finds the one proxy of its namespace and says what is wrong otherwise")
    func discoveryAndErrors() throws {
        let dir = NSTemporaryDirectory() + "tsmp-discover-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: ControlClient.Failure.self) { try ControlClient.discover(in: dir) }
        FileManager.default.createFile(atPath: dir + "/tsmp0.sock", contents: nil)
        #expect(try ControlClient.discover(in: dir) == dir + "/tsmp0.sock")
        FileManager.default.createFile(atPath: dir + "/tsmp1.sock", contents: nil)
        do {
            _ = try ControlClient.discover(in: dir)
            Issue.record("two sockets: no error")
        } catch let failure as ControlClient.Failure {
            #expect(failure.description.contains("2 proxies run in this network namespace"))
        }
        do {
            _ = try ControlClient(socketPath: dir + "/none.sock").request("GET", "/v1/flows")
            Issue.record("no socket: no error")
        } catch let failure as ControlClient.Failure {
            #expect(failure.description.contains("no proxy control socket at"))
        }
        #expect(LocalControlSocket.validate("127.0.0.1:7464")?.contains("root-only Unix socket") == true)
        #expect(LocalControlSocket.validate("relative.sock")?.contains("absolute path") == true)
        #expect(LocalControlSocket.validate("/run/tsmp/x.sock") == nil)
    }
}
