@testable import Namespace
import Testing

/// Which addresses can be a device's locator, and when the namespace takes one (issue 10,
/// finding 1): a table of addresses and their kinds, then the policies over it.
@Suite("Locator policy")
struct LocatorPolicyTests {
    @Test("address kinds", arguments: [
        ("10.1.0.2", LocatorAddressKind.unicast),
        ("192.0.2.7", .unicast),
        ("169.254.1.1", .unicast),
        ("223.255.255.255", .unicast),
        ("2001:db8::1", .unicast),
        ("fec0::1", .unicast),
        ("0.0.0.0", .unspecified),
        ("::", .unspecified),
        ("0:0:0:0:0:0:0:0", .unspecified),
        ("0.1.2.3", .thisNetwork),
        ("127.0.0.1", .loopback),
        ("127.255.0.9", .loopback),
        ("::1", .loopback),
        ("224.0.0.1", .multicast),
        ("239.255.255.250", .multicast),
        ("ff02::1", .multicast),
        ("ff0e::abcd", .multicast),
        ("240.0.0.1", .reserved),
        ("254.1.2.3", .reserved),
        ("255.255.255.254", .reserved),
        ("255.255.255.255", .limitedBroadcast),
        ("::10.1.0.2", .ipv4Compatible),
        ("fe80::1", .linkLocalIPv6),
        ("febf::1", .linkLocalIPv6),
        // IPv4-mapped: judged as the IPv4 address they stand for.
        ("::ffff:10.1.0.2", .unicast),
        ("::ffff:127.0.0.1", .loopback),
        ("::ffff:0.0.0.0", .unspecified),
        ("::ffff:255.255.255.255", .limitedBroadcast),
        ("", .notAnAddress),
        ("10.1.0", .notAnAddress),
        ("host.example", .notAnAddress),
    ])
    func kinds(address: String, expected: LocatorAddressKind) {
        let kind = LocatorAddressKind(address)
        #expect(kind == expected, "\(address)")
        #expect((kind.refusal == nil) == (expected == .unicast), "\(address)")
    }

    @Test("special addresses are refused under both policies, with the reason",
          arguments: ["0.0.0.0", "::", "127.0.0.1", "::1", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1",
                      "0.0.0.7", "fe80::1", "::ffff:127.0.0.1"])
    func specialRefused(address: String) throws {
        let locator = try Locator(address: address, agentPort: 7445)
        for policy in [LocatorPolicy.sourceAddress, .unattributed] {
            // Even when the request claims to come from that very address.
            #expect(throws: NamespaceError.self, "\(address) under \(policy)") { try policy.check(locator, cameFrom: address) }
            do { try policy.check(locator, cameFrom: address) } catch {
                guard case .invalid(let reason) = error else { Issue.record("expected invalid, got \(error)"); continue }
                #expect(reason.hasPrefix("locator \(locator.address): "), "\(reason)")
            }
        }
    }

    @Test("by default only the request's own source address; unattributed takes any usable one")
    func attribution() throws {
        let locator = try Locator(address: "10.1.0.2", agentPort: 7445)
        try LocatorPolicy.sourceAddress.check(locator, cameFrom: "10.1.0.2")
        try LocatorPolicy.sourceAddress.check(locator, cameFrom: "::ffff:10.1.0.2")  // a dual-stack listener's view
        do {
            try LocatorPolicy.sourceAddress.check(locator, cameFrom: "10.1.0.9")
            Issue.record("another device's address was taken")
        } catch {
            #expect(error == .invalid("locator 10.1.0.2 is not the address this request came from (10.1.0.9); a device's locator is the address it reaches the namespace from"))
        }
        #expect(throws: NamespaceError.self) { try LocatorPolicy.sourceAddress.check(locator, cameFrom: nil) }
        #expect(throws: NamespaceError.self) { try LocatorPolicy.sourceAddress.check(locator, cameFrom: "not an address") }
        try LocatorPolicy.unattributed.check(locator, cameFrom: "10.1.0.9")
        try LocatorPolicy.unattributed.check(locator, cameFrom: nil)
        let v6 = try Locator(address: "2001:db8::2")
        try LocatorPolicy.sourceAddress.check(v6, cameFrom: "2001:DB8:0::2")
    }
}
