import ControlPlane
import Dispatch
import Foundation
import NIOHTTP1
import Testing
import TestSupport

/// The namespace's and the agent's metrics (`--metrics`): answers counted per route by
/// result, the named families (heartbeats, resolutions, MTRs), promtool-clean text.
@Suite("Service metrics")
struct ServiceMetricsTests {

    static func request(_ method: HTTPMethod, _ path: String) -> HTTPEndpoint.Request {
        HTTPEndpoint.Request(method: method, path: path)
    }

    /// The namespace's routes answering 200, 403 and 500, instrumented.
    static func namespaceScraped() async -> String {
        let metrics = ServiceMetrics.namespace()
        let routes = metrics.instrument([
            "POST /v1/heartbeat": { _ in HTTPEndpoint.Response(text: "{}") },
            "GET /v1/resolve": { _ in .error(.forbidden, "not yours") },
            "GET /v1/changes": { _ in .error(.internalServerError, "database gone") },
        ])
        for _ in 0..<3 { _ = await routes["POST /v1/heartbeat"]?(request(.POST, "/v1/heartbeat")) }
        _ = await routes["GET /v1/resolve"]?(request(.GET, "/v1/resolve"))
        _ = await routes["GET /v1/changes"]?(request(.GET, "/v1/changes"))
        return metrics.render()
    }

    @Test("the namespace counts heartbeats and resolutions by result, and every route's answers")
    func namespace() async {
        let text = await Self.namespaceScraped()
        #expect(text.contains("# TYPE tsmp_namespace_heartbeats_total counter\n"))
        #expect(text.contains("tsmp_namespace_heartbeats_total{result=\"ok\"} 3\n"))
        #expect(text.contains("tsmp_namespace_heartbeats_total{result=\"error\"} 0\n"))
        #expect(text.contains("tsmp_namespace_resolutions_total{result=\"refused\"} 1\n"))
        #expect(text.contains("tsmp_namespace_requests_total{route=\"GET /v1/changes\",result=\"error\"} 1\n"))
        #expect(text.contains("tsmp_namespace_requests_total{route=\"POST /v1/heartbeat\",result=\"ok\"} 3\n"))
        #expect(text.contains("tsmp_build_info{version="))
    }

    @Test("the agent counts MTRs by route and heartbeats it sent")
    func agent() async {
        let metrics = ServiceMetrics.agent()
        let routes = metrics.instrument(["POST /v1/mtr": { _ in .error(.badRequest, "malformed") }])
        _ = await routes["POST /v1/mtr"]?(Self.request(.POST, "/v1/mtr"))
        metrics.count("heartbeats", .ok)
        metrics.count("heartbeats", .error)
        metrics.count("heartbeats", .ok)
        let text = metrics.render()
        #expect(text.contains("tsmp_agent_mtrs_total{result=\"refused\"} 1\n"))
        #expect(text.contains("tsmp_agent_mtr_connects_total{result=\"ok\"} 0\n"))
        #expect(text.contains("tsmp_agent_heartbeats_total{result=\"ok\"} 2\n"))
        #expect(text.contains("tsmp_agent_heartbeats_total{result=\"error\"} 1\n"))
    }

    @Test("answers are sorted into ok, refused and error by status class")
    func results() {
        #expect(ServiceMetrics.Result(status: 204) == .ok)
        #expect(ServiceMetrics.Result(status: 404) == .refused)
        #expect(ServiceMetrics.Result(status: 503) == .error)
        #expect(ServiceMetrics.Result(status: 302) == .error)
    }

    @Test("promtool check metrics passes on the namespace's and the agent's text",
          .enabled(if: Promtool.path != nil, "promtool is not installed (apt-get install prometheus)"))
    func promtoolClean() async throws {
        let agent = ServiceMetrics.agent()
        agent.count("heartbeats", .ok)
        for text in [await Self.namespaceScraped(), agent.render()] {
            let (status, said) = try await Promtool.check(text)
            #expect(status == 0 && said.isEmpty, "promtool: \(said)")
        }
    }
}
