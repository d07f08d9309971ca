import Testing

/// The namespace service over its store, every function on both databases: the same scenarios
/// (NamespaceScenarios.swift) on a fresh SQLite file and on a fresh schema of a real PostgreSQL
/// server. Without `TSMP_TEST_POSTGRES_URL` the PostgreSQL half is reported as skipped, never
/// as passed (scripts/test starts a throwaway server and sets it).
@Suite("Namespace service and store")
struct NamespaceTests {
    @Suite("on SQLite")
    struct OnSQLite {
        @Test func registration() async throws { try await NamespaceScenarios.registration(.sqlite) }
        @Test func introduction() async throws { try await NamespaceScenarios.introduction(.sqlite) }
        @Test func proxies() async throws { try await NamespaceScenarios.proxies(.sqlite) }
        @Test func heartbeat() async throws { try await NamespaceScenarios.heartbeat(.sqlite) }
        @Test func heartbeatExpiry() async throws { try await NamespaceScenarios.heartbeatExpiry(.sqlite) }
        @Test func locatorUpdate() async throws { try await NamespaceScenarios.locatorUpdate(.sqlite) }
        @Test func resolution() async throws { try await NamespaceScenarios.resolution(.sqlite) }
        @Test func preferencesRefused() async throws { try await NamespaceScenarios.preferencesRefused(.sqlite) }
        @Test func restart() async throws { try await NamespaceScenarios.restart(.sqlite) }
        @Test func schemaVersion() async throws { try await NamespaceScenarios.schemaVersion(.sqlite) }
        @Test func convergence() async throws { try await NamespaceScenarios.convergence(.sqlite) }
        @Test func concurrentRequests() async throws { try await NamespaceScenarios.concurrentRequests(.sqlite) }
        @Test func failedOperationsChangeNothing() async throws { try await NamespaceScenarios.failedOperationsChangeNothing(.sqlite) }
        @Test func repeatedRegistration() async throws { try await NamespaceKeyScenarios.repeatedRegistration(.sqlite) }
        @Test func migrationFromVersion1() async throws { try await NamespaceKeyScenarios.migrationFromVersion1(.sqlite) }
        @Test func groupConverges() async throws { try await GroupConvergenceScenarios.groupConverges(.sqlite) }
    }

    @Suite("on PostgreSQL",
           .enabled(if: Backend.postgresURL != nil,
                    "TSMP_TEST_POSTGRES_URL is not set: start a server with scripts/lib/postgres.sh pg_start (scripts/test does)"))
    struct OnPostgreSQL {
        @Test func registration() async throws { try await NamespaceScenarios.registration(.postgresql) }
        @Test func introduction() async throws { try await NamespaceScenarios.introduction(.postgresql) }
        @Test func proxies() async throws { try await NamespaceScenarios.proxies(.postgresql) }
        @Test func heartbeat() async throws { try await NamespaceScenarios.heartbeat(.postgresql) }
        @Test func heartbeatExpiry() async throws { try await NamespaceScenarios.heartbeatExpiry(.postgresql) }
        @Test func locatorUpdate() async throws { try await NamespaceScenarios.locatorUpdate(.postgresql) }
        @Test func resolution() async throws { try await NamespaceScenarios.resolution(.postgresql) }
        @Test func preferencesRefused() async throws { try await NamespaceScenarios.preferencesRefused(.postgresql) }
        @Test func restart() async throws { try await NamespaceScenarios.restart(.postgresql) }
        @Test func schemaVersion() async throws { try await NamespaceScenarios.schemaVersion(.postgresql) }
        @Test func convergence() async throws { try await NamespaceScenarios.convergence(.postgresql) }
        @Test func concurrentRequests() async throws { try await NamespaceScenarios.concurrentRequests(.postgresql) }
        @Test func failedOperationsChangeNothing() async throws { try await NamespaceScenarios.failedOperationsChangeNothing(.postgresql) }
        @Test func repeatedRegistration() async throws { try await NamespaceKeyScenarios.repeatedRegistration(.postgresql) }
        @Test func migrationFromVersion1() async throws { try await NamespaceKeyScenarios.migrationFromVersion1(.postgresql) }
        @Test func groupConverges() async throws { try await GroupConvergenceScenarios.groupConverges(.postgresql) }
    }
}
