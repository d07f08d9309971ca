/// Why a namespace operation was refused or failed. Every case carries a sentence that names
/// what was wrong and why (`what: why`), fit to be shown to the user or sent as an HTTP error.
///
/// The gateway's HTTP API maps them to status codes: invalid 400, forbidden 403, notFound 404,
/// conflict 409, storage 500.
public enum NamespaceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request itself is malformed: a bad e-mail, name, address, ranking or time.
    case invalid(String)
    /// A user, device or proxy the request names does not exist.
    case notFound(String)
    /// The request would create something that exists already.
    case conflict(String)
    /// The request is well formed but not allowed (another user's device).
    case forbidden(String)
    /// The database failed or could not be reached; nothing was changed.
    case storage(String)

    public var description: String {
        switch self {
        case .invalid(let reason), .notFound(let reason), .conflict(let reason),
             .forbidden(let reason), .storage(let reason):
            return reason
        }
    }
}
