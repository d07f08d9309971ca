@testable import ControlPlane
import PacketIO
import Testing

/// The destination of an MTR (the flow's server or service address, as the proxy names it):
/// the agent connects its pre-bound socket there, so it takes either family.
@Suite struct AgentDestinationTests {
    @Test("IPv4:PORT and [IPv6]:PORT are taken, as socket addresses of their family")
    func taken() throws {
        #expect(Agent.parseEndpoint("10.2.0.2:9000") == .v4(address: 0x0A02_0002, port: 9000))
        let v6 = try #require(Agent.parseEndpoint("[fd00:2::2]:9000"))
        #expect(v6 == .v6(address: [0xfd, 0, 0, 2] + [UInt8](repeating: 0, count: 11) + [2], port: 9000, scope: 0))
        #expect(v6.description == "[fd00:2::2]:9000")
    }

    @Test("anything else is refused: no port, port 0, an IPv6 address without brackets, a name")
    func refused() {
        for bad in ["10.2.0.2", "10.2.0.2:0", "fd00::2:9000", "[fd00::2]", "server.lab:9000", "", "[fd00::2]:70000"] {
            #expect(Agent.parseEndpoint(bad) == nil, "\(bad)")
        }
    }

    @Test("the pre-bound socket has the destination's family (an IPv4 socket cannot reach an IPv6 server)")
    func boundLikeTheDestination() throws {
        for destination in [IPSocketAddress.v4(address: 0x7F00_0001, port: 9), .v6(address: [UInt8](repeating: 0, count: 15) + [1], port: 9, scope: 0)] {
            let bound = try Syscall.boundTCPSocket(like: destination)
            defer { try? Syscall.close(bound.fd) }
            #expect(bound.port != 0)
        }
    }
}
