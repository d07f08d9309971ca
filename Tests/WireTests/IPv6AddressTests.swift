import Testing
import TestSupport
import Wire

/// IPv6 address text (RFC 4291 §2.2 in, RFC 5952 §4 out) and the family-neutral address and
/// endpoint.
@Suite struct IPv6AddressTests {
    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"), ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), // the first of equal runs (§4.2.3)
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"), // one zero group stays (§4.2.2)
        ("2001:DB8::AbCd", "2001:db8::abcd"), ("::", "::"), ("::1", "::1"), ("fe80::", "fe80::"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"), ("::ffff:10.1.0.2", "::ffff:a01:2"), ("fd00:1::2", "fd00:1::2"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ])
    func parsesAndPrintsCanonically(text: String, canonical: String) throws {
        let a = try #require(IPv6Address(text))
        #expect(a.description == canonical)
        #expect(IPv6Address(canonical) == a)
    }

    @Test func halvesAndGroups() {
        let a = address6("2001:db8:1:2:3:4:5:6")
        #expect(a.high == 0x2001_0DB8_0001_0002 && a.low == 0x0003_0004_0005_0006)
        #expect(a.groups == [0x2001, 0xDB8, 1, 2, 3, 4, 5, 6])
        #expect(a.wordSum == 0x2001 + 0xDB8 + 1 + 2 + 3 + 4 + 5 + 6)
        #expect(address6("::1") < address6("::2") && address6("::ffff") < address6("1::"))
    }

    @Test(arguments: [
        "", ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::", ":1::", "1::2:",
        "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "[::1]", "fe80::1%eth0", "1.2.3.4", "::1.2.3", "::1.2.3.4:5",
        "::01.2.3.4", " ::1", "::1 ", "::-1", "::+1", "2001:db8::/32", "::１",
    ])
    func refusesMalformed(text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func endpoints() {
        #expect(IPv6Endpoint("[2001:db8::1]:443") == IPv6Endpoint(address6("2001:db8::1"), 443))
        #expect(IPv6Endpoint("[::]:0")?.description == "[::]:0")
        for bad in ["2001:db8::1:443", "[2001:db8::1]", "[2001:db8::1]:", "[2001:db8::1]:65536", "[2001:db8::1]:+1",
                    "[2001:db8::1] :80", "[1.2.3.4]:80", "[::1]:80:80", "[::1]x80"] {
            #expect(IPv6Endpoint(bad) == nil, "\(bad)")
        }
        #expect(IPEndpoint("10.1.0.2:80") == IPEndpoint(IPv4Endpoint("10.1.0.2:80")!))
        #expect(IPEndpoint("[fd00::2]:80")?.family == .ipv6)
        #expect(IPEndpoint("[fd00::2]:80")?.description == "[fd00::2]:80")
        #expect(IPAddress("10.1.0.2") == .v4(address("10.1.0.2")) && IPAddress("fd00::2") == .v6(address6("fd00::2")))
        #expect(IPAddress("fd00::2")?.family == .ipv6 && IPAddress("host.example") == nil)
    }
}
