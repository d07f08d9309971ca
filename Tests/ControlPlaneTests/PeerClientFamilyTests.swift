@testable import ControlPlane
import PacketIO
import Testing

/// While the data plane manages IPv4 flows only, a control-plane client reaching a host name
/// with both families speaks IPv4 (issue "IPv6 and dual stack"): the proxy attributes flows by
/// the address a request comes from, and a namespace takes a locator only from it.
@Suite struct PeerClientFamilyTests {
    @Test("IPv4 first, each family in the resolver's order")
    func order() {
        let v6 = IPSocketAddress.v6(address: [UInt8](repeating: 0, count: 15) + [1], port: 1, scope: 0)
        let v4a = IPSocketAddress.v4(address: 0x7F00_0001, port: 1), v4b = IPSocketAddress.v4(address: 0x0A00_0001, port: 1)
        #expect(Syscall.preferringIPv4([v6, v4a, v4b]) == [v4a, v4b, v6])
        #expect(Syscall.preferringIPv4([v6]) == [v6])
    }

    @Test("a name with both families is reached at its IPv4 address; a literal or an unknown name is left to the connection")
    func preferredAddress() {
        let v6 = IPSocketAddress.v6(address: [0xFD] + [UInt8](repeating: 0, count: 14) + [1], port: 7444, scope: 0)
        let v4 = IPSocketAddress.v4(address: 0x0A01_0001, port: 7444)
        let both: (String, UInt16) throws -> [IPSocketAddress] = { _, _ in [v6, v4] }
        #expect(PeerClient.preferredAddress("gateway.lab", 7444, resolve: both)?.ipAddress == "10.1.0.1")
        #expect(PeerClient.preferredAddress("gateway.lab", 7444, resolve: { _, _ in [v6] })?.ipAddress == "fd00::1")
        #expect(PeerClient.preferredAddress("10.1.0.1", 7444, resolve: both) == nil)
        #expect(PeerClient.preferredAddress("fd00::1", 7444, resolve: both) == nil)
        #expect(PeerClient.preferredAddress("nowhere.invalid", 7444, resolve: { host, _ in throw ResolveError(host: host, reason: "unknown") }) == nil)
    }
}
