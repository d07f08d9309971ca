import Foundation
import Logging
import PostgresKit
import SQLiteKit

/// Opens the namespace's storage from a URL:
///
/// - `sqlite:PATH` (or `sqlite://PATH`): an SQLite file in WAL mode, created when missing;
/// - `sqlite::memory:`: a private in-memory SQLite database (tests);
/// - `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME&tlsmode=disable|prefer|require]`
///   (`postgres://` too): PostgreSQL; `schema` puts the tables in that schema (created when
///   missing) instead of the user's default search path.
///
/// The schema is created or migrated before `open` returns.
public enum NamespaceDatabase {
    public static func open(_ url: String, logger: Logger) async throws -> any NamespaceStore {
        let target = try target(for: url)
        do {
            return try await SQLNamespaceStore.open(target, logger: logger)
        } catch {
            guard case .storage(let reason) = error else { throw error }
            throw NamespaceError.storage("cannot open \(reason)")
        }
    }

    /// The file of an `sqlite:PATH` URL (nil for PostgreSQL, `sqlite::memory:` and bad URLs):
    /// the service sets its mode before SQLite creates it.
    public static func sqliteFilePath(_ url: String) -> String? {
        guard case .sqlite(.file(let path), _)? = try? target(for: url) else { return nil }
        return path
    }

    /// Parses the URL without connecting.
    static func target(for url: String) throws(NamespaceError) -> SQLNamespaceStore.Target {
        let usage = "expected sqlite:PATH, sqlite::memory: or postgresql://USER@HOST:PORT/DATABASE"
        if url == "sqlite::memory:" {
            return .sqlite(.memory, description: url)
        }
        if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }
            guard !path.isEmpty else { throw .invalid("database URL \"\(url)\": no file path (\(usage))") }
            guard !path.contains("\0") else { throw .invalid("database URL \"\(url)\": NUL in the file path") }
            return .sqlite(.file(path: path), description: "sqlite:\(path)")
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw .invalid("database URL \"\(redacted(url))\": unknown scheme (\(usage))")
        }
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw .invalid("database URL \"\(redacted(url))\": not a URL with a host (\(usage))")
        }
        guard let user = components.user, !user.isEmpty else {
            throw .invalid("database URL \"\(redacted(url))\": no user name (\(usage))")
        }
        let known = ["schema", "tlsmode", "sslmode", "tls", "ssl"]
        for item in components.queryItems ?? [] where !known.contains(item.name.lowercased()) {
            throw .invalid("database URL \"\(redacted(url))\": unknown option \"\(item.name)\" (known: \(known.joined(separator: ", ")))")
        }
        let schema = components.queryItems?.last(where: { $0.name.lowercased() == "schema" })?.value
        if let schema, !isSchemaName(schema) {
            throw .invalid("database URL \"\(redacted(url))\": schema \"\(schema)\" must be 1 to 63 of [a-z0-9_], not starting with a digit")
        }
        let configuration: SQLPostgresConfiguration
        do { configuration = try SQLPostgresConfiguration(url: url) } catch {
            throw .invalid("database URL \"\(redacted(url))\": \(error.localizedDescription) (\(usage); tlsmode is disable, prefer or require)")
        }
        return .postgresql(configuration.coreConfiguration, schema: schema, description: redacted(url))
    }

    /// The URL with its password replaced, fit for logs and errors.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    private static func isSchemaName(_ name: String) -> Bool {
        guard (1...63).contains(name.utf8.count), let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}
