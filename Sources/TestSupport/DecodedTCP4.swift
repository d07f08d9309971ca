import Wire

/// The name tests of IPv4 packets use; a `DecodedTCP` decodes either family.
public typealias DecodedTCP4 = DecodedTCP

/// Every field of a TCP packet of either family copied into a value: tests compare it, print
/// it, and read options without walking bytes. Built through Wire's checked views, so decoding
/// untrusted bytes throws a `WireError` and never traps. For IPv6, `ttl` is the hop limit,
/// `tos` the traffic class, `identification` 0 and `dontFragment` true (RFC 8200 §3, §5).
public struct DecodedTCP: Equatable, Sendable, CustomStringConvertible {
    public var source: IPEndpoint
    public var destination: IPEndpoint
    public var flags: TCPFlags
    public var seq: SeqNumber
    public var ack: SeqNumber
    public var window: UInt16
    public var urgentPointer: UInt16
    /// Every option in order, padding NOPs and EOL included (EOL as `.raw([0])`); an option
    /// whose length does not fit its kind as `.raw` with its bytes.
    public var options: [TCPOption]
    /// True when the option list could not be walked to its end (see `TCPOptions`).
    public var optionsMalformed: Bool
    public var payload: [UInt8]
    public var ttl: UInt8
    public var identification: UInt16
    public var dontFragment: Bool
    /// The IP TOS byte (DSCP and ECN codepoint).
    public var tos: UInt8
    public var ipChecksumValid: Bool
    public var tcpChecksumValid: Bool
    /// IPv6's flow label (0 for IPv4).
    public var flowLabel: UInt32 = 0

    /// Decodes `bytes` (bytes past the IP total length are ignored).
    public init(_ bytes: [UInt8]) throws(WireError) {
        var copy = bytes
        let result: Result<DecodedTCP, WireError> = copy.withUnsafeMutableBytes { buf in
            do throws(WireError) {
                switch try TCPIPPacket(validating: buf) {
                case .v4(let p): return .success(DecodedTCP(p))
                case .v6(let p): return .success(DecodedTCP(p))
                }
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    /// Copies the fields of a validated view.
    public init(_ packet: TCPIPv4Packet) {
        let tcp = packet.tcp
        self.init(tcp, source: IPEndpoint(packet.source), destination: IPEndpoint(packet.destination),
                  ttl: packet.ip.ttl, identification: packet.ip.identification, dontFragment: packet.ip.dontFragment,
                  tos: packet.ip.tos, ipChecksumValid: packet.ip.verifyHeaderChecksum,
                  pseudoHeaderSum: packet.ip.pseudoHeaderSum(transportLength: tcp.bytes.count))
    }

    /// Copies the fields of a validated IPv6 view.
    public init(_ packet: TCPIPv6Packet) {
        let tcp = packet.tcp
        self.init(tcp, source: IPEndpoint(packet.source), destination: IPEndpoint(packet.destination),
                  ttl: packet.ip.hopLimit, identification: 0, dontFragment: true, tos: packet.ip.trafficClass,
                  ipChecksumValid: true, pseudoHeaderSum: packet.ip.pseudoHeaderSum(transportLength: tcp.bytes.count))
        flowLabel = packet.ip.flowLabel
    }

    private init(_ tcp: TCPSegment, source: IPEndpoint, destination: IPEndpoint, ttl: UInt8, identification: UInt16,
                 dontFragment: Bool, tos: UInt8, ipChecksumValid: Bool, pseudoHeaderSum: UInt32) {
        self.source = source
        self.destination = destination
        flags = tcp.flags
        seq = tcp.seq
        ack = tcp.ack
        window = tcp.window
        urgentPointer = tcp.urgentPointer
        payload = Array(tcp.payload)
        self.ttl = ttl
        self.identification = identification
        self.dontFragment = dontFragment
        self.tos = tos
        self.ipChecksumValid = ipChecksumValid
        tcpChecksumValid = tcp.verifyChecksum(pseudoHeaderSum: pseudoHeaderSum)
        let opts = tcp.options
        var it = opts.makeIterator()
        var decoded: [TCPOption] = []
        while let slot = it.next() {
            // One option type for parse and emit; EOL kept as its byte, as the tests compare it.
            let option = opts.decode(slot)
            decoded.append(option == .endOfList ? .raw([TCPOptionKind.endOfList]) : option)
        }
        options = decoded
        optionsMalformed = it.isMalformed
    }

    /// Both checksums right.
    public var checksumsValid: Bool { ipChecksumValid && tcpChecksumValid }

    /// The options without NOP padding and EOL: what a test usually means to compare.
    public var significantOptions: [TCPOption] {
        options.filter { $0 != .noOperation && $0 != .raw([TCPOptionKind.endOfList]) }
    }
    public var maximumSegmentSize: UInt16? {
        for case .maximumSegmentSize(let m) in options { return m }
        return nil
    }
    public var windowScale: UInt8? {
        for case .windowScale(let s) in options { return s }
        return nil
    }
    public var sackPermitted: Bool { options.contains(.sackPermitted) }
    public var sackBlocks: [SackBlock] {
        for case .sack(let blocks) in options { return blocks }
        return []
    }
    public var timestamp: (value: UInt32, echoReply: UInt32)? {
        for case .timestamp(let v, let e) in options { return (v, e) }
        return nil
    }

    /// One line in the manner of tcpdump:
    /// `10.1.0.2:40000 > 10.2.0.2:80 S seq 100 ack 0 win 65535 [mss 1460,nop,wscale 7] len 0`.
    public var description: String {
        var s = "\(source) > \(destination) \(flags) seq \(seq) ack \(ack) win \(window)"
        if !options.isEmpty { s += " [" + options.map(Self.describe).joined(separator: ",") + (optionsMalformed ? ",malformed" : "") + "]" }
        s += " len \(payload.count)"
        if !checksumsValid { s += " (bad \(ipChecksumValid ? "" : "ip ")\(tcpChecksumValid ? "" : "tcp ")checksum)" }
        return s
    }

    static func describe(_ o: TCPOption) -> String {
        switch o {
        case .endOfList: return "eol"
        case .noOperation: return "nop"
        case .maximumSegmentSize(let m): return "mss \(m)"
        case .windowScale(let s): return "wscale \(s)"
        case .sackPermitted: return "sackOK"
        case .sack(let blocks): return "sack " + blocks.map { "\($0.left)-\($0.right)" }.joined(separator: " ")
        case .timestamp(let v, let e): return "TS val \(v) ecr \(e)"
        case .raw(let b): return b == [0] ? "eol" : "raw " + hexString(b)
        }
    }
}
