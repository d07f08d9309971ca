import Engine
import Foundation
import Gateway
import Telemetry
import Testing
import TestSupport

/// The proxy's /metrics text (issue "Operator experience": `tsmp_device_write_errors` was a
/// gauge without `_total`; no `build_info`). promtool is the judge of the exposition format.
@Suite("Engine metrics")
struct EngineMetricsTests {

    func render(writeErrors: Int = 3) -> String {
        String(decoding: EngineMetrics().render(EngineStatus.sum([]), deviceWriteErrors: writeErrors), as: UTF8.self)
    }

    @Test("tsmp_build_info carries the version and commit, value 1")
    func buildInfo() {
        let text = render()
        #expect(text.contains("# TYPE tsmp_build_info gauge"))
        #expect(text.contains(#"tsmp_build_info{version="\#(BuildInfo.version)",commit="\#(BuildInfo.commit)"} 1"#))
    }

    @Test("device write errors are a counter named _total, and keep their value across scrapes")
    func writeErrorsCounter() {
        let metrics = EngineMetrics()
        _ = metrics.render(EngineStatus.sum([]), deviceWriteErrors: 5)
        let text = String(decoding: metrics.render(EngineStatus.sum([]), deviceWriteErrors: 7), as: UTF8.self)
        #expect(text.contains("# TYPE tsmp_device_write_errors_total counter"))
        #expect(text.contains("\ntsmp_device_write_errors_total 7\n"))
        #expect(!text.contains("tsmp_device_write_errors "))
    }

    @Test("promtool check metrics finds no problem", .enabled(if: Promtool.path != nil, "promtool is not installed (apt-get install prometheus)"))
    func promtoolClean() async throws {
        let said = try await Promtool.check(render())
        #expect(said.status == 0, "promtool: \(said.output)")
        #expect(said.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(said.output)")
    }
}
