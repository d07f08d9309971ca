import ArgumentParser
import Foundation
import Media
import PacketIO
import Wire

/// `tsmp bench-media`: the media relay's cost per RTP packet (issue 15, benchmark), offline:
/// real H.264 RTP from a capture through `MediaRelay` (parse, GOP detection, routing), plain
/// and after a migration (the continuity rewrite on every packet), beside a baseline measured
/// in the same run: copying each datagram, the least any user-space relay does.
struct BenchMediaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-media",
        abstract: "Measure the media relay offline: ns per RTP packet, packets per second per core.",
        discussion: """
        The RTP of --pcap (UDP payloads, as scripts/capture-media-fixtures recorded them) is \
        replayed --packets times in all through a relay holding one playing session (set up \
        with SETUP and PLAY as a player and a server would), its sequence numbers and \
        timestamps advanced each pass. Times are the thread's CPU time; the median of --rounds.

        Examples:
          tsmp bench-media
          tsmp bench-media --pcap Tests/MediaTests/Fixtures/h264-aggregate.pcap --packets 2000000
        """)

    @Option(help: "A capture of RTP over UDP (H.264).")
    var pcap = "Tests/MediaTests/Fixtures/h264-single.pcap"

    @Option(help: "Packets relayed per round.")
    var packets = 1_000_000

    @Option(help: "Rounds; the median is reported.")
    var rounds = 5

    func validate() throws {
        if !(1_000...100_000_000).contains(packets) { throw ValidationError("--packets must be 1000 to 100000000") }
        if !(1...50).contains(rounds) { throw ValidationError("--rounds must be 1 to 50") }
    }

    static let server = IPEndpoint(.v4(IPv4Address(10, 2, 0, 2)), 8554)
    static let player = IPEndpoint(.v4(IPv4Address(10, 1, 0, 2)), 40000)
    static let pair: UInt16 = 46002

    func run() throws {
        let rtp = try Self.datagrams(pcap)
        guard rtp.count >= 10 else { throw ValidationError("\(pcap) holds \(rtp.count) RTP packets: too few") }
        // A real copy (Array(bytes) of an array would only share its buffer).
        let copy = median((0..<rounds).map { _ in measure(rtp) { bytes in bytes.withUnsafeBytes { [UInt8]($0) } } })
        let plain = median((0..<rounds).map { _ in relayed(rtp, migrated: false) })
        let migrated = median((0..<rounds).map { _ in relayed(rtp, migrated: true) })
        print("media relay: \(packets) RTP packets (\(rtp.count) distinct, H.264, \(rtp.reduce(0) { $0 + $1.count } / rtp.count) bytes on average) from \(pcap)")
        print("  copy each datagram (baseline): \(fmt(copy)) ns/packet")
        print("  relayed, one session:          \(fmt(plain)) ns/packet  x\(fmt(plain / copy)) the baseline  \(fmt(1e9 / plain / 1e6)) M packets/s per core")
        print("  relayed after a migration:     \(fmt(migrated)) ns/packet  x\(fmt(migrated / copy)) the baseline  \(fmt(1e9 / migrated / 1e6)) M packets/s per core")
        print("  (CPU time of the relay's state machine only: the sockets' recvfrom/sendto are the kernel's, as for any UDP relay)")
    }

    /// ns per packet of `body` over the packets, thread CPU time.
    private func measure(_ rtp: [[UInt8]], _ body: ([UInt8]) -> [UInt8]) -> Double {
        var sink = 0
        let t0 = Syscall.threadCPUNow()
        for i in 0..<packets { sink &+= body(rtp[i % rtp.count]).count }
        let t = Double(Syscall.threadCPUNow().nanoseconds - t0.nanoseconds)
        if sink == 42 { print("") }
        return t / Double(packets)
    }

    private func relayed(_ rtp: [[UInt8]], migrated: Bool) -> Double {
        var relay = Self.playingRelay()
        var now = MediaTime.seconds(1)
        if migrated { Self.migrate(&relay, rtp: rtp, now: &now) }
        // Each pass continues the numbering where the capture ends, as a live stream would.
        let seqSpan = UInt16(truncatingIfNeeded: rtp.count)
        let tsSpan: UInt32 = 90_000 * 3
        var stream = rtp
        var sink = 0
        let from = IPEndpoint(Self.server.address, 5000)
        let t0 = Syscall.threadCPUNow()
        for i in 0..<packets {
            let k = i % stream.count
            if k == 0 && i > 0 {
                for j in stream.indices {
                    let seq = (UInt16(stream[j][2]) << 8 | UInt16(stream[j][3])) &+ seqSpan
                    stream[j][2] = UInt8(seq >> 8); stream[j][3] = UInt8(seq & 0xFF)
                    var ts = UInt32(stream[j][4]) << 24 | UInt32(stream[j][5]) << 16 | UInt32(stream[j][6]) << 8 | UInt32(stream[j][7])
                    ts &+= tsSpan
                    stream[j][4] = UInt8(ts >> 24); stream[j][5] = UInt8(ts >> 16 & 0xFF); stream[j][6] = UInt8(ts >> 8 & 0xFF); stream[j][7] = UInt8(ts & 0xFF)
                }
            }
            sink &+= relay.handle(.serverDatagram(localPort: Self.pair, from: from, stream[k]), now: now).count
        }
        let t = Double(Syscall.threadCPUNow().nanoseconds - t0.nanoseconds)
        if sink == 42 { print("") }
        _ = now
        return t / Double(packets)
    }

    /// A relay with one session playing: DESCRIBE (an H.264 description), SETUP and PLAY,
    /// answered as a server would.
    static func playingRelay() -> MediaRelay {
        var relay = MediaRelay(config: MediaRelayConfig(devicePortRTP: 46000, serverPortPairs: [pair]))
        let c = MediaConnectionID(1), now = MediaTime.seconds(1)
        _ = relay.handle(.accepted(c, device: player, server: server), now: now)
        _ = relay.handle(.upstreamConnected(c), now: now)
        let url = "rtsp://10.2.0.2:8554/test"
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.2.0.2\r\ns=bench\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:stream=0\r\n"
        let exchange: [(String, String)] = [
            ("DESCRIBE \(url) RTSP/1.0\r\nCSeq: 1\r\n\r\n",
             "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Base: \(url)/\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)"),
            ("SETUP \(url)/stream=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=40000-40001\r\n\r\n",
             "RTSP/1.0 200 OK\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=\(pair)-\(pair + 1);server_port=5000-5001;ssrc=1234ABCD\r\nSession: s1;timeout=60\r\n\r\n"),
            ("PLAY \(url)/ RTSP/1.0\r\nCSeq: 3\r\nSession: s1\r\n\r\n", "RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: s1\r\n\r\n"),
        ]
        for (request, answer) in exchange {
            _ = relay.handle(.deviceBytes(c, Array(request.utf8)), now: now)
            _ = relay.handle(.upstreamBytes(c, Array(answer.utf8)), now: now)
        }
        return relay
    }

    /// Moves the session to a second player (answered by the relay) and on past the switch.
    static func migrate(_ relay: inout MediaRelay, rtp: [[UInt8]], now: inout MediaTime) {
        let url = "rtsp://10.2.0.2:8554/test"
        _ = relay.migrate(MediaSessionID(1), to: .v4(IPv4Address(10, 3, 0, 2)), deadline: .seconds(10), now: now)
        let c = MediaConnectionID(2)
        _ = relay.handle(.accepted(c, device: IPEndpoint(.v4(IPv4Address(10, 3, 0, 2)), 41000), server: server), now: now)
        for request in ["SETUP \(url)/stream=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=50000-50001\r\n\r\n",
                        "PLAY \(url)/ RTSP/1.0\r\nCSeq: 2\r\nSession: s1\r\n\r\n"] {
            _ = relay.handle(.deviceBytes(c, Array(request.utf8)), now: now)
        }
        for packet in rtp { _ = relay.handle(.serverDatagram(localPort: pair, from: IPEndpoint(server.address, 5000), packet), now: now) }
    }

    /// The UDP payloads of an IPv4 capture.
    static func datagrams(_ path: String) throws -> [[UInt8]] {
        try PcapFileReader(path: path).readAll().compactMap { packet in
            var bytes = packet
            let payload: [UInt8]? = bytes.withUnsafeMutableBytes { buf in
                guard let ip = try? IPv4Packet(validating: buf), ip.protocolNumber == 17, ip.payload.count > 8 + 12 else { return nil }
                return Array(ip.payload[8...])
            }
            return payload.flatMap { (try? RTPHeader(parsing: $0)) != nil ? $0 : nil }
        }
    }

    private func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
    private func fmt(_ x: Double) -> String { String(format: "%.1f", x) }
}
