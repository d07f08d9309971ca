import Telemetry
import Testing

/// The Prometheus text writer the services without a metrics registry use.
@Suite("Prometheus text")
struct PrometheusTextTests {
    @Test("a counter gets _total once, HELP and TYPE before its samples, labels in order")
    func counter() {
        var t = PrometheusText()
        t.counter("x_heartbeats", help: "Heartbeats", [(labels: [("result", "ok")], value: 3), (labels: [("result", "error")], value: 0)])
        t.counter("y_total", help: "Y", [(labels: [], value: 1)])
        #expect(t.text == """
            # HELP x_heartbeats_total Heartbeats
            # TYPE x_heartbeats_total counter
            x_heartbeats_total{result="ok"} 3
            x_heartbeats_total{result="error"} 0
            # HELP y_total Y
            # TYPE y_total counter
            y_total 1

            """)
    }

    @Test("label values and help are escaped (backslash, quote, line feed)")
    func escaping() {
        var t = PrometheusText()
        t.gauge("g", help: "a\\b\nc", [(labels: [("v", "q\"\\\n")], value: 1.5)])
        #expect(t.text == "# HELP g a\\\\b\\nc\n# TYPE g gauge\ng{v=\"q\\\"\\\\\\n\"} 1.5\n")
    }

    @Test("a histogram without a +Inf bucket gets one; sum and count follow")
    func histogram() {
        var t = PrometheusText()
        t.histogram("h_seconds", help: "H", buckets: [(0.5, 1), (2, 3)], sum: 4.25)
        #expect(t.text.hasSuffix("""
            h_seconds_bucket{le="0.5"} 1
            h_seconds_bucket{le="2"} 3
            h_seconds_bucket{le="+Inf"} 3
            h_seconds_sum 4.25
            h_seconds_count 3

            """))
    }

    @Test("numbers: integers without a fraction, infinities and NaN by name")
    func numbers() {
        #expect(PrometheusText.number(3) == "3")
        #expect(PrometheusText.number(0.25) == "0.25")
        #expect(PrometheusText.number(.infinity) == "+Inf")
        #expect(PrometheusText.number(-.infinity) == "-Inf")
        #expect(PrometheusText.number(.nan) == "NaN")
        #expect(PrometheusText.number(1e20) == "1e+20")
    }
}
