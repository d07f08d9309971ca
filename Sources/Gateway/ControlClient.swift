import Foundation
import GatewayHost
import PacketIO
import Wire

/// The CLI side of the proxy's local control endpoint, a root-only Unix socket
/// (``LocalControlSocket``): one HTTP/1.1 request per connection (`Connection: close`), JSON
/// bodies, through the syscall funnel. Errors say what was tried and what to do.
public struct ControlClient: Sendable {
    public let socketPath: String
    public init(socketPath: String) { self.socketPath = socketPath }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Sends a request and returns the status code and body.
    public func request(_ method: String, _ path: String, body: [UInt8] = []) throws -> (status: Int, body: [UInt8]) {
        let fd: Int32
        do {
            fd = try Syscall.connectUnix(socketPath)
        } catch {
            throw Failure(description: Self.explain(error, socketPath))
        }
        defer { try? Syscall.close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: tsmp\r\nConnection: close\r\n"
        head += "Content-Length: \(body.count)\r\n"
        if !body.isEmpty { head += "Content-Type: application/json\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + body
        try bytes.withUnsafeBytes { try Syscall.writeAll(fd, $0) }
        let response = try Syscall.readToEnd(fd)
        guard let split = response.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw Failure(description: "malformed response from \(socketPath) (\(response.count) bytes)")
        }
        let headText = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        let statusLine = headText.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw Failure(description: "malformed status line from \(socketPath): \(statusLine)")
        }
        return (status, Array(response[split.upperBound...]))
    }

    /// What a failed connect means to whoever typed the command.
    static func explain(_ error: SystemError, _ path: String) -> String {
        switch error.errno {
        case EACCES, EPERM:
            return "permission denied: the proxy's control socket \(path) is for root only (run the command as root)"
        case ENOENT:
            return "no proxy control socket at \(path) (is `tsmp proxy` running in this network namespace?)"
        case ECONNREFUSED:
            return "nobody answers on \(path): the proxy that made it is gone (`tsmp proxy cleanup` removes what it left)"
        default:
            return "cannot reach the proxy's control socket \(path): \(error)"
        }
    }

    /// The control socket of the one proxy running in this network namespace (its state
    /// directory holds `TUN.sock` per running proxy); a clear error when there is none or several.
    public static func discover(in directory: String = GatewayStateStore.defaultDirectory) throws -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(LocalControlSocket.suffix) }.sorted()
        switch names.count {
        case 0:
            throw Failure(description: "no tsmp proxy runs in this network namespace (no control socket in \(directory)); give --control PATH if it uses another")
        case 1:
            return "\(directory)/\(names[0])"
        default:
            throw Failure(description: "\(names.count) proxies run in this network namespace: give --control with one of \(names.map { "\(directory)/\($0)" }.joined(separator: ", "))")
        }
    }

    /// GET `path` and decode JSON; a non-2xx answer becomes a Failure carrying the server's reason.
    public func get<T: Decodable>(_ path: String, as: T.Type) throws -> T {
        try decode(request("GET", path), as: T.self)
    }

    public func post<T: Decodable>(_ path: String, json: some Encodable, as: T.Type) throws -> T {
        try decode(request("POST", path, body: Array(JSONEncoder().encode(json))), as: T.self)
    }

    private func decode<T: Decodable>(_ r: (status: Int, body: [UInt8]), as: T.Type) throws -> T {
        guard (200..<300).contains(r.status) else {
            let reason = (try? JSONDecoder().decode([String: String].self, from: Data(r.body)))?["error"]
                ?? String(decoding: r.body, as: UTF8.self)
            throw Failure(description: "the proxy refused: \(reason) (HTTP \(r.status))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(r.body))
        } catch {
            throw Failure(description: "unexpected answer from the proxy: \(error)")
        }
    }
}
