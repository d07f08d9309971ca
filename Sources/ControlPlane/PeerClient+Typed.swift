extension PeerClient {
    /// `call(_:_:query:json:as:)` with the answer's type inferred from the context.
    public func call<T: Decodable>(_ method: String, _ path: String, query: [String: String] = [:],
                                   json body: some Encodable) async throws -> T {
        try await call(method, path, query: query, json: body, as: T.self)
    }

    /// `call(_:_:query:as:)` with the answer's type inferred from the context.
    public func call<T: Decodable>(_ method: String, _ path: String, query: [String: String] = [:]) async throws -> T {
        try await call(method, path, query: query, as: T.self)
    }
}
