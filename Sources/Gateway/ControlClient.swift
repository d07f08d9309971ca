import Foundation
import PacketIO
import Wire

/// The CLI side of the proxy's local control endpoint: one HTTP/1.1 request per connection
/// (`Connection: close`), JSON bodies, through the syscall funnel. Errors say what was tried.
public struct ControlClient: Sendable {
    public let endpoint: IPv4Endpoint
    public init(endpoint: IPv4Endpoint) { self.endpoint = endpoint }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Sends a request and returns the status code and body.
    public func request(_ method: String, _ path: String, body: [UInt8] = []) throws -> (status: Int, body: [UInt8]) {
        let fd: Int32
        do {
            fd = try Syscall.connectTCP(endpoint.address.value, port: endpoint.port)
        } catch {
            throw Failure(description: "cannot reach the proxy's control endpoint at \(endpoint): \(error) (is `tsmp proxy` running here, with --control \(endpoint)?)")
        }
        defer { try? Syscall.close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(endpoint)\r\nConnection: close\r\n"
        head += "Content-Length: \(body.count)\r\n"
        if !body.isEmpty { head += "Content-Type: application/json\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + body
        try bytes.withUnsafeBytes { try Syscall.writeAll(fd, $0) }
        let response = try Syscall.readToEnd(fd)
        guard let split = response.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw Failure(description: "malformed response from \(endpoint) (\(response.count) bytes)")
        }
        let headText = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        let statusLine = headText.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw Failure(description: "malformed status line from \(endpoint): \(statusLine)")
        }
        return (status, Array(response[split.upperBound...]))
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
