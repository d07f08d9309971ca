import Foundation
import Testing
import TestSupport
import Wire

/// IPv4 address and endpoint text forms.
@Suite struct IPAddressTests {
    @Test(arguments: [
        ("0.0.0.0", 0 as UInt32), ("255.255.255.255", 0xFFFF_FFFF), ("10.1.0.2", 0x0A01_0002),
        ("192.168.1.254", 0xC0A8_01FE), ("1.2.3.4", 0x0102_0304),
    ])
    func parsesAddresses(text: String, value: UInt32) {
        let a = IPv4Address(text)
        #expect(a?.value == value)
        #expect(a?.description == text)
    }

    @Test(arguments: [
        "", " ", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1.2.3.1000", "1..2.3", ".1.2.3",
        "1.2.3.", "1.2.3.4.", " 1.2.3.4", "1.2.3.4 ", "1.2. 3.4", "a1.2.3.4", "1.2.3.4a", "1.2.3.-4", "1.2.3.+4",
        "0x1.2.3.4", "010.1.0.2", "10.01.0.2", "1.2.3.00", "1.2.3.4/32", "1,2,3,4", "١.2.3.4", "1.2.3.٤", "１.2.3.4", "::1", "1.2.3.4:80",
    ])
    func refusesMalformedAddresses(text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test func addressParts() {
        let a = IPv4Address(10, 1, 0, 2)
        #expect(a.value == 0x0A01_0002)
        #expect(a.octets == (10, 1, 0, 2))
        #expect(IPv4Address(0x0A01_0002) == a)
        #expect(IPv4Address(10, 1, 0, 2) < IPv4Address(10, 1, 0, 3))
        #expect(IPv4Address(9, 255, 255, 255) < IPv4Address(10, 0, 0, 0))
        #expect(IPv4Address("10.1.0.2"[...]) == a) // Substring
    }

    @Test(arguments: [
        ("10.1.0.2:40000", "10.1.0.2", 40000 as UInt16), ("0.0.0.0:0", "0.0.0.0", 0),
        ("255.255.255.255:65535", "255.255.255.255", 65535), ("1.2.3.4:00080", "1.2.3.4", 80),
    ])
    func parsesEndpoints(text: String, address: String, port: UInt16) {
        let e = IPv4Endpoint(text)
        #expect(e?.address == IPv4Address(address))
        #expect(e?.port == port)
    }

    @Test(arguments: [
        "", ":", "1.2.3.4", "1.2.3.4:", ":80", "1.2.3.4:65536", "1.2.3.4:99999999999", "1.2.3.4:-1",
        "1.2.3.4:+80", "1.2.3.4:-0", "1.2.3.4: 80", "1.2.3.4:80 ", " 1.2.3.4:80", "1.2.3.4 :80",
        "1.2.3.4:80:80", "1.2.3.4::80", "1.2.3:80", "1.2.3.4.5:80", "256.0.0.1:80", "1.2.3.4:0x50",
        "1.2.3.4:٨٠",
    ])
    func refusesMalformedEndpoints(text: String) {
        #expect(IPv4Endpoint(text) == nil)
    }

    @Test func endpointDescriptionRoundTrips() {
        let e = IPv4Endpoint(IPv4Address(10, 2, 0, 2), 80)
        #expect(e.description == "10.2.0.2:80")
        #expect(IPv4Endpoint(e.description) == e)
    }

    @Test func codableUsesText() throws {
        let e = IPv4Endpoint(IPv4Address(10, 2, 0, 2), 443)
        let json = try JSONEncoder().encode(e)
        #expect(String(decoding: json, as: UTF8.self).contains("\"10.2.0.2\""))
        #expect(try JSONDecoder().decode(IPv4Endpoint.self, from: json) == e)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(IPv4Address.self, from: Data("\"10.2.0.256\"".utf8))
        }
    }

    /// RFC 5952 §4 canonical text (more in IPv6AddressTests).
    @Test func ipv6AddressDescription() {
        #expect(IPv6Address(high: 0xfd00_0001_0000_0000, low: 2).description == "fd00:1::2")
        #expect(IPv6Address(high: 0, low: 1).description == "::1")
    }
}
