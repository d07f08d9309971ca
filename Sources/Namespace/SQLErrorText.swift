import PostgresKit
import SQLiteKit

/// Turns database errors into `NamespaceError`s with readable reasons. PostgresNIO's own
/// descriptions are deliberately vague (they could leak query data into logs), so the reason
/// is built from the server's message and SQLSTATE, or from the underlying network error.
enum SQLErrorText {
    static func namespaceError(_ error: any Error, database: String) -> NamespaceError {
        if let error = error as? NamespaceError { return error }
        if isUniqueViolation(error) {
            return .conflict("namespace database \(database): another writer stored the same key first (\(describe(error)))")
        }
        return .storage("namespace database \(database): \(describe(error))")
    }

    /// A unique or primary key constraint refused an insert.
    static func isUniqueViolation(_ error: any Error) -> Bool {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] == "23505" }
        if let error = error as? SQLiteError {
            switch error.reason {
            case .constraint, .constraintUniqueFailed, .constraintPrimaryKeyFailed: return true
            default: return false
            }
        }
        return false
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                var text = info[.message] ?? "server error"
                if let detail = info[.detail] { text += " (\(detail))" }
                if let state = info[.sqlState] { text += " [SQLSTATE \(state)]" }
                return text
            }
            if let underlying = error.underlying { return "\(error.code.description): \(underlying)" }
            return error.code.description
        }
        if let error = error as? SQLiteError { return error.message.isEmpty ? "\(error.reason)" : error.message }
        return "\(error)"
    }
}
