import Foundation
import Gateway
import GatewayHost
import Testing

/// `tsmp proxy` checks capabilities, not uid 0 (issue "Operator experience": "The proxy refuses
/// anything but uid 0 (no CAP_NET_ADMIN-only run)").
@Suite("Proxy capabilities")
struct ProxyCapabilitiesTests {
    static func status(capEff: String) -> String {
        "Name:\ttsmp\nUmask:\t0022\nCapInh:\t0000000000000000\nCapPrm:\t\(capEff)\nCapEff:\t\(capEff)\nCapBnd:\t000001ffffffffff\n"
    }

    @Test("root's full set and a service user's CAP_NET_ADMIN + CAP_NET_RAW (0x3000) pass")
    func enough() {
        #expect(ProxyCapabilities.problem(statusText: Self.status(capEff: "000001ffffffffff")) == nil)
        #expect(ProxyCapabilities.problem(statusText: Self.status(capEff: "0000000000003000")) == nil)
        #expect(ProxyCapabilities.effectiveSet(statusText: Self.status(capEff: "0000000000003000")) == 0x3000)
    }

    @Test("a plain user (no capabilities) is refused with both named")
    func none() throws {
        let message = try #require(ProxyCapabilities.problem(statusText: Self.status(capEff: "0000000000000000")))
        #expect(message.contains("missing: CAP_NET_ADMIN, CAP_NET_RAW"))
        #expect(message.contains("AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW"))
    }

    @Test("only CAP_NET_ADMIN (0x1000): the message names CAP_NET_RAW alone")
    func onlyNetAdmin() throws {
        let message = try #require(ProxyCapabilities.problem(statusText: Self.status(capEff: "0000000000001000")))
        #expect(message.contains("missing: CAP_NET_RAW."))
        #expect(!message.contains("missing: CAP_NET_ADMIN"))
        #expect(ProxyCapabilities.missing(from: 0x1000) == [.netRaw])
        #expect(ProxyCapabilities.missing(from: 0x2000) == [.netAdmin])
    }

    @Test("cleanup needs CAP_NET_ADMIN only")
    func cleanup() {
        #expect(ProxyCapabilities.problem(statusText: Self.status(capEff: "0000000000001000"), needed: [.netAdmin], command: "tsmp proxy cleanup") == nil)
        let message = ProxyCapabilities.problem(statusText: Self.status(capEff: "0000000000002000"), needed: [.netAdmin], command: "tsmp proxy cleanup")
        #expect(message?.hasPrefix("tsmp proxy cleanup needs CAP_NET_ADMIN") == true)
    }

    @Test("a status without a readable CapEff line is a problem, not a pass")
    func unreadable() {
        #expect(ProxyCapabilities.effectiveSet(statusText: "Name:\ttsmp\n") == nil)
        #expect(ProxyCapabilities.effectiveSet(statusText: "CapEff:\tzzzz\n") == nil)
        #expect(ProxyCapabilities.problem(statusText: "Name:\ttsmp\n")?.contains("no CapEff line") == true)
    }

    @Test("this process: the answer agrees with its own CapEff")
    func ownProcess() throws {
        let text = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let effective = try #require(ProxyCapabilities.effectiveSet(statusText: text))
        let full = effective & 0x3000 == 0x3000
        #expect((ProxyCapabilities.problem() == nil) == full)
    }

    @Test("the TUN node: a missing one is named with the reason; the machine's own opens (when there is one)")
    func tunDevice() throws {
        let missing = try #require(ProxyCapabilities.tunDeviceProblem(path: "/nonexistent/net/tun"))
        #expect(missing.hasPrefix("cannot open /nonexistent/net/tun: No such file or directory"))
        if geteuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun") {
            #expect(ProxyCapabilities.tunDeviceProblem() == nil)
        }
    }
}
