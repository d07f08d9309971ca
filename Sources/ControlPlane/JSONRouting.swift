import Foundation
import Namespace
import NIOHTTP1

/// A refusal with its own HTTP status, thrown from a route's body.
public struct RouteRefusal: Error, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var reason: String
    public init(_ status: HTTPResponseStatus, _ reason: String) { self.status = status; self.reason = reason }
    public var description: String { reason }
}

/// JSON in and out for the control plane's routes: decoding with a reason on failure, one
/// mapping from errors to statuses (`NamespaceError`, `RouteRefusal`, the rest 500).
public protocol JSONRouting {}

extension JSONRouting {
    public static var noIdentity: HTTPEndpoint.Response { .error(.unauthorized, "no client identity: present a credential the namespace issued") }

    public static func json(_ value: some Encodable, status: HTTPResponseStatus = .ok) -> HTTPEndpoint.Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return HTTPEndpoint.Response(status: status, body: Array(try encoder.encode(value)) + [0x0A])
        } catch {
            return .error(.internalServerError, "cannot encode the answer: \(error)")
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ request: HTTPEndpoint.Request) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(request.body))
        } catch let error as DecodingError {
            throw RouteRefusal(.badRequest, "malformed \(T.self): \(Self.describe(error))")
        } catch {
            throw RouteRefusal(.badRequest, "malformed \(T.self): \(error)")
        }
    }

    /// Runs `body`; its value is the answer, its error the refusal.
    public static func answering<T: Encodable>(status: HTTPResponseStatus,
                                               _ body: () async throws -> T) async -> HTTPEndpoint.Response {
        do {
            return json(try await body(), status: status)
        } catch {
            return failure(error)
        }
    }

    public static func failure(_ error: any Error) -> HTTPEndpoint.Response {
        switch error {
        case let refusal as RouteRefusal: return .error(refusal.status, refusal.reason)
        case let e as NamespaceError:
            switch e {
            case .invalid(let why): return .error(.badRequest, why)
            case .notFound(let why): return .error(.notFound, why)
            case .conflict(let why): return .error(.conflict, why)
            case .forbidden(let why): return .error(.forbidden, why)
            case .storage(let why): return .error(.serviceUnavailable, "storage: \(why)")
            }
        default: return .error(.internalServerError, "\(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at \(p)"
        }
        switch error {
        case .keyNotFound(let key, let c): return "missing \"\(key.stringValue)\"\(path(c))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "\(c.debugDescription)\(path(c))"
        case .dataCorrupted(let c): return "\(c.debugDescription)\(path(c))"
        @unknown default: return "\(error)"
        }
    }
}
