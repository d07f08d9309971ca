import ControlPlane
import Testing

/// HOST:PORT and URLs on the command line (issue "IPv6 and dual stack", item 4): both
/// families and host names taken, everything else refused with what was expected.
@Suite struct HostPortTests {
    @Test("IPv4, bracketed IPv6 and host names are taken; the brackets are not part of the host")
    func taken() throws {
        #expect(try HostPort(parsing: "10.0.0.1:7443", flag: "--listen") == HostPort(host: "10.0.0.1", port: 7443))
        #expect(try HostPort(parsing: "[2001:db8::1]:7443", flag: "--listen") == HostPort(host: "2001:db8::1", port: 7443))
        #expect(try HostPort(parsing: "[::]:7443", flag: "--listen").host == "::")
        #expect(try HostPort(parsing: "gw.lab-1.example:80", flag: "--forward") == HostPort(host: "gw.lab-1.example", port: 80))
        #expect(try HostPort(parsing: "localhost:9", flag: "--forward").description == "localhost:9")
        #expect(try HostPort(parsing: "[fd00::1]:9", flag: "--forward").description == "[fd00::1]:9")
        #expect(try HostPort(parsing: "0.0.0.0:0", flag: "--listen", allowPortZero: true).port == 0)
    }

    @Test("refused with what was expected: no port, IPv6 without brackets, bad names, bad ports, junk in brackets", arguments: [
        ("10.0.0.1", "expected HOST:PORT"),
        ("2001:db8::1:7443", "takes brackets"),
        ("[2001:db8::1]7443", "expected HOST:PORT"),
        ("[10.0.0.1]:7443", "not an IPv6 address"),
        ("[gw]:7443", "not an IPv6 address"),
        ("-gw.example:7443", "an IPv4 or IPv6 address, or a host name"),
        ("gw_1.example:7443", "an IPv4 or IPv6 address, or a host name"),
        ("gw..example:7443", "an IPv4 or IPv6 address, or a host name"),
        ("300.1.2.3:7443", "an IPv4 or IPv6 address, or a host name"),
        (":7443", "an IPv4 or IPv6 address, or a host name"),
        ("gw.example:0", "the port must be 1-65535"),
        ("gw.example:65536", "the port must be 1-65535"),
        ("gw.example:http", "the port must be 1-65535"),
    ])
    func refused(_ text: String, _ says: String) {
        #expect(throws: HostPortError.self) { try HostPort(parsing: text, flag: "--forward") }
        do {
            _ = try HostPort(parsing: text, flag: "--forward")
        } catch {
            #expect(error.description.contains(says), "\(text): \(error)")
            #expect(error.description.hasPrefix("--forward"))
        }
    }

    @Test("URLs: host and port of http(s)://HOST:PORT, the default port by scheme; an unbracketed IPv6 address or a bad name refused")
    func urls() throws {
        #expect(try HostPort(url: "https://[fd00:1::1]:7444", flag: "--proxy") == HostPort(host: "fd00:1::1", port: 7444))
        #expect(try HostPort(url: "https://gateway.lab:7444/", flag: "--proxy") == HostPort(host: "gateway.lab", port: 7444))
        #expect(try HostPort(url: "http://10.3.0.1", flag: "--proxy") == HostPort(host: "10.3.0.1", port: 80))
        #expect(try HostPort(url: "https://gateway.lab", flag: "--proxy").port == 443)
        for bad in ["ftp://10.0.0.1:21", "10.0.0.1:7444", "https://", "https://gw_x:7444"] {
            #expect(throws: HostPortError.self, "\(bad)") { try HostPort(url: bad, flag: "--proxy") }
        }
    }
}
