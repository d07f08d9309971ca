#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Media
import PacketIO
import Synchronization
import Wire

/// The media relay's I/O (SMP draft §5): one thread polling the relay's sockets and feeding
/// `MediaRelay`, which decides everything; this side only moves bytes.
///
/// Sockets: the listening TCP socket (device RTSP connections, redirected by
/// `MediaInterceptTable`), the device-side UDP pair, every server-side UDP pair (bound on the
/// NAT address at start, so a port conflict refuses the start), the device connections and the
/// relay's connections to servers (bound on the NAT address, source ports from the media range).
///
/// Invariants: only the loop thread touches sockets; other threads reach the relay under its
/// lock and leave the actions it returns for the loop (woken through an eventfd). Every read has
/// a deadline through the relay's session timeouts; every descriptor is closed on `stop`.
public final class MediaRelayService: @unchecked Sendable {
    struct Shared {
        var relay: MediaRelay
        var pending: [MediaRelayAction] = []
        var stopping = false
    }
    private enum Side: Hashable { case device, upstream }
    private struct Connection {
        let fd: Int32
        var out: [UInt8] = []
        var connecting = false
        var closeWhenFlushed = false
    }

    public let settings: MediaRelaySettings
    private let logger: Logger
    private let shared: Mutex<Shared>
    private let wake: Int32
    /// What each bound socket is for, per address family (IPv6 only with an IPv6 --nat).
    private enum Role: Hashable {
        case listener(IPFamily)
        case deviceRTP(IPFamily)
        case deviceRTCP(IPFamily)
        case server(port: UInt16, IPFamily)
    }
    private var sockets: [Role: Int32] = [:]
    /// The bound sockets in poll order, after the eventfd: fixed once bound, so each wake-up
    /// polls a copy of `socketPollFDs` plus the connections.
    private var socketRoles: [(role: Role, fd: Int32)] = []
    private var socketPollFDs: [pollfd] = []
    private var connections: [Side: [MediaConnectionID: Connection]] = [.device: [:], .upstream: [:]]
    private var nextConnection: UInt64 = 1
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)
    private let qualityHandler = Mutex<(@Sendable (MediaSessionID, QualityAlert) -> Void)?>(nil)

    /// Who hears of a session whose loss stayed above the threshold (the device API, which asks
    /// the owner's agent: SMP §5.2). Called on the relay's thread: hand the work on.
    public func onQualityAlert(_ handler: @escaping @Sendable (MediaSessionID, QualityAlert) -> Void) {
        qualityHandler.withLock { $0 = handler }
    }
    private static let clock: @Sendable () -> MediaTime = { MediaTime(nanoseconds: UInt64(Syscall.monotonicNow().nanoseconds)) }

    /// Binds every socket; throws (closing what it opened) when one cannot be had.
    public init(settings: MediaRelaySettings, logger: Logger) throws(SystemError) {
        self.settings = settings
        self.logger = logger
        shared = Mutex(Shared(relay: MediaRelay(config: settings.relayConfig)))
        var bound: [Role: Int32] = [:]
        do throws(SystemError) {
            wake = try Syscall.eventfd()
            do throws(SystemError) {
                for family in settings.nat6 == nil ? [IPFamily.ipv4] : [.ipv4, .ipv6] {
                    let any = Self.address(family == .ipv4 ? .v4(IPv4Address(0)) : .v6(IPv6Address(high: 0, low: 0)))
                    let nat = Self.address(family == .ipv4 ? .v4(settings.nat) : .v6(settings.nat6!))
                    bound[.listener(family)] = try Syscall.boundSocket(any(settings.listenPort), type: Int32(SOCK_STREAM.rawValue), listening: true)
                    bound[.deviceRTP(family)] = try Syscall.boundSocket(any(settings.devicePort), type: Int32(SOCK_DGRAM.rawValue))
                    bound[.deviceRTCP(family)] = try Syscall.boundSocket(any(settings.devicePort &+ 1), type: Int32(SOCK_DGRAM.rawValue))
                    for pair in settings.serverPairs {
                        for port in [pair, pair &+ 1] {
                            bound[.server(port: port, family)] = try Syscall.boundSocket(nat(port), type: Int32(SOCK_DGRAM.rawValue))
                        }
                    }
                }
            } catch {
                try? Syscall.close(wake)
                throw error
            }
        } catch {
            for fd in bound.values { try? Syscall.close(fd) }
            throw error
        }
        sockets = bound
        socketRoles = bound.map { (role: $0.key, fd: $0.value) }
        socketPollFDs = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            + socketRoles.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
    }

    public func start() {
        let t = Thread { [self] in
            loop()
            stopped.signal()
        }
        t.name = "tsmp-media"
        thread = t
        t.start()
    }

    /// Stops the loop and closes every socket; a second call does nothing.
    public func stop() {
        let already = shared.withLock { s in
            defer { s.stopping = true }
            return s.stopping
        }
        if already { return }
        _ = try? Syscall.eventfdWrite(wake)
        if thread != nil { stopped.wait() }
        for side in [Side.device, .upstream] { for c in connections[side]!.values { try? Syscall.close(c.fd) } }
        for fd in [wake] + Array(sockets.values) { try? Syscall.close(fd) }
    }

    // MARK: What other threads ask

    public func summaries() -> [MediaSessionSummary] { shared.withLock { $0.relay.summaries() } }
    public func counters() -> MediaRelayCounters { shared.withLock { $0.relay.counters } }
    public func report(_ id: MediaSessionID) -> MediaMigrationReport? { shared.withLock { $0.relay.migrationReport(id) } }

    /// Starts a migration of session `id` to the device at `target`; the refusal's reason, or nil.
    public func migrate(_ id: MediaSessionID, to target: IPAddress, deadlineSeconds: Double) -> String? {
        let refusal: String? = shared.withLock { s in
            let (refusal, actions) = s.relay.migrate(id, to: target, deadline: .seconds(deadlineSeconds), now: Self.clock())
            s.pending += actions
            return refusal
        }
        _ = try? Syscall.eventfdWrite(wake)
        return refusal
    }

    // MARK: The loop

    private func feed(_ input: MediaRelayInput) {
        let actions = shared.withLock { s in s.relay.handle(input, now: Self.clock()) }
        execute(actions)
    }

    private func loop() {
        var lastTick = Self.clock()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let (stopping, pending): (Bool, [MediaRelayAction]) = shared.withLock { s in
                defer { s.pending = [] }
                return (s.stopping, s.pending)
            }
            if stopping { return }
            execute(pending)
            var fds = socketPollFDs
            var owners: [(Side, MediaConnectionID)] = []
            for side in [Side.device, .upstream] {
                for (id, c) in connections[side]! {
                    var events = Int16(POLLIN)
                    if c.connecting || !c.out.isEmpty { events |= Int16(POLLOUT) }
                    if c.connecting { events = Int16(POLLOUT) }
                    fds.append(pollfd(fd: c.fd, events: events, revents: 0))
                    owners.append((side, id))
                }
            }
            let ready = (try? fds.withUnsafeMutableBufferPointer { (p) throws(SystemError) in try Syscall.poll(p, timeoutMilliseconds: 200) }) ?? 0
            if ready > 0 {
                if fds[0].revents != 0 { _ = try? Syscall.eventfdRead(wake) }
                for (i, (role, fd)) in socketRoles.enumerated() where fds[1 + i].revents != 0 {
                    switch role {
                    case .listener(let family): acceptAll(fd, family)
                    case .deviceRTP: receive(fd, &buffer) { .deviceDatagram(rtcp: false, from: $0, $1) }
                    case .deviceRTCP: receive(fd, &buffer) { .deviceDatagram(rtcp: true, from: $0, $1) }
                    case .server(let port, _): receive(fd, &buffer) { .serverDatagram(localPort: port, from: $0, $1) }
                    }
                }
                let base = socketPollFDs.count
                for (i, owner) in owners.enumerated() where fds[base + i].revents != 0 {
                    service(owner.0, owner.1, revents: fds[base + i].revents, &buffer)
                }
            }
            let now = Self.clock()
            if now >= lastTick.adding(.seconds(0.25)) {
                lastTick = now
                feed(.tick)
            }
        }
    }

    private func acceptAll(_ listener: Int32, _ family: IPFamily) {
        for _ in 0..<64 {
            guard case .done(let (fd, peer))? = try? Syscall.accept(listener) else { return }
            guard let peer, let original = try? Syscall.originalDestination(fd, ipv6: family == .ipv6), let local = try? Syscall.localAddress(fd),
                  original != local else {
                // Not redirected by the media table: nobody's RTSP session.
                logger.notice("media relay: refused a connection that was not redirected to it", metadata: ["from": "\(peer.map { "\($0)" } ?? "?")"])
                try? Syscall.close(fd)
                continue
            }
            let id = MediaConnectionID(nextConnection)
            nextConnection += 1
            connections[.device]![id] = Connection(fd: fd)
            feed(.accepted(id, device: IPEndpoint(peer), server: IPEndpoint(original)))
        }
    }

    private func receive(_ fd: Int32, _ buffer: inout [UInt8], _ input: (IPEndpoint, [UInt8]) -> MediaRelayInput) {
        for _ in 0..<64 {
            let result = buffer.withUnsafeMutableBytes { try? Syscall.recvfrom(fd, into: $0) }
            guard case .done(let (n, from))? = result, let from else { return }
            feed(input(IPEndpoint(from), Array(buffer[0..<n])))
        }
    }

    private func service(_ side: Side, _ id: MediaConnectionID, revents: Int16, _ buffer: inout [UInt8]) {
        guard var c = connections[side]?[id] else { return }
        if c.connecting {
            let error = (try? Syscall.pendingError(c.fd)) ?? EIO
            guard error == 0 else { return drop(side, id, reason: String(cString: strerror(error))) }
            c.connecting = false
            connections[side]![id] = c
            feed(.upstreamConnected(id))
            return flush(side, id)
        }
        if revents & Int16(POLLOUT) != 0 { flush(side, id) }
        guard revents & Int16(POLLIN | POLLHUP | POLLERR) != 0, connections[side]?[id] != nil else { return }
        let result = buffer.withUnsafeMutableBytes { try? Syscall.read(c.fd, into: $0) }
        switch result {
        case .done(let n)? where n > 0:
            let bytes = Array(buffer[0..<n])
            feed(side == .device ? .deviceBytes(id, bytes) : .upstreamBytes(id, bytes))
        case .wouldBlock?:
            return
        default:
            drop(side, id, reason: "closed")
        }
    }

    /// The peer closed (or failed): the relay hears of it, the descriptor is closed.
    private func drop(_ side: Side, _ id: MediaConnectionID, reason: String) {
        guard let c = connections[side]?.removeValue(forKey: id) else { return }
        try? Syscall.close(c.fd)
        feed(side == .device ? .deviceClosed(id) : .upstreamClosed(id, reason: reason))
    }

    private func flush(_ side: Side, _ id: MediaConnectionID) {
        guard var c = connections[side]?[id], !c.connecting else { return }
        while !c.out.isEmpty {
            let result = c.out.withUnsafeBytes { try? Syscall.write(c.fd, $0) }
            guard case .done(let n)? = result else {
                if result == nil { return drop(side, id, reason: "write failed") }
                break
            }
            c.out.removeFirst(n)
        }
        if c.out.isEmpty && c.closeWhenFlushed {
            connections[side]![id] = nil
            try? Syscall.close(c.fd)
            return
        }
        connections[side]![id] = c
    }

    /// Bytes a peer that does not read may leave waiting before its connection is dropped.
    static let maxOutBytes = 1 << 20

    private func send(_ side: Side, _ id: MediaConnectionID, _ bytes: [UInt8]) {
        guard var c = connections[side]?[id] else { return }
        guard c.out.count + bytes.count <= Self.maxOutBytes else {
            logger.notice("media relay: a peer stopped reading; its connection is dropped", metadata: [
                "connection": "\(id)", "side": "\(side)", "waiting_bytes": "\(c.out.count)",
            ])
            return drop(side, id, reason: "more than \(Self.maxOutBytes) bytes waited for it")
        }
        c.out += bytes
        connections[side]![id] = c
        flush(side, id)
    }

    private func close(_ side: Side, _ id: MediaConnectionID) {
        guard var c = connections[side]?[id] else { return }
        c.closeWhenFlushed = true
        connections[side]![id] = c
        flush(side, id)
    }

    private func execute(_ actions: [MediaRelayAction]) {
        for action in actions {
            switch action {
            case .connectUpstream(let id, let server):
                connectUpstream(id, to: server)
            case .sendToDevice(let id, let bytes):
                send(.device, id, bytes)
            case .sendUpstream(let id, let bytes):
                send(.upstream, id, bytes)
            case .closeDevice(let id):
                close(.device, id)
            case .closeUpstream(let id):
                close(.upstream, id)
            case .sendToServer(let port, let to, let bytes):
                if let fd = sockets[.server(port: port, to.address.family)] { _ = try? Syscall.sendto(fd, bytes, to: IPSocketAddress(to)) }
            case .sendToPlayer(let rtcp, let to, let bytes):
                let family = to.address.family
                if let fd = sockets[rtcp ? .deviceRTCP(family) : .deviceRTP(family)] { _ = try? Syscall.sendto(fd, bytes, to: IPSocketAddress(to)) }
            case .event(let event):
                log(event)
            }
        }
    }

    /// The relay's own connection to the server, from the NAT address and a port of the media range.
    private func connectUpstream(_ id: MediaConnectionID, to server: IPEndpoint) {
        let nat: IPAddress
        switch server.address {
        case .v4: nat = .v4(settings.nat)
        case .v6:
            guard let nat6 = settings.nat6 else { return feed(.upstreamClosed(id, reason: "an IPv6 server, and no IPv6 --nat to reach it from")) }
            nat = .v6(nat6)
        }
        let source = Self.address(nat)
        let candidates = settings.serverPairs.flatMap { [$0, $0 &+ 1] }
        let start = Int(id.rawValue % UInt64(max(1, candidates.count)))
        for k in 0..<candidates.count {
            let port = candidates[(start + k) % candidates.count]
            guard let fd = try? Syscall.boundSocket(source(port), type: Int32(SOCK_STREAM.rawValue)) else { continue }
            do {
                let connected = try Syscall.startConnect(fd, to: IPSocketAddress(server))
                connections[.upstream]![id] = Connection(fd: fd, connecting: !connected)
                if connected { feed(.upstreamConnected(id)) }
            } catch {
                try? Syscall.close(fd)
                // This source port still has a connection to the server in TIME-WAIT: the next one.
                if error.errno == EADDRNOTAVAIL || error.errno == EADDRINUSE { continue }
                feed(.upstreamClosed(id, reason: "\(error)"))
            }
            return
        }
        feed(.upstreamClosed(id, reason: "no free source port in --media-ports \(settings.ports)"))
    }

    /// A socket address of `address` with a port.
    private static func address(_ address: IPAddress) -> (UInt16) -> IPSocketAddress {
        { port in IPSocketAddress(IPEndpoint(address, port)) }
    }

    private func log(_ event: MediaRelayEvent) {
        switch event {
        case .sessionStarted(let id, let url, let device):
            logger.info("media session playing", metadata: ["session": "\(id)", "url": "\(url)", "device": "\(device.address)"])
        case .sessionEnded(let id, let reason):
            logger.info("media session ended", metadata: ["session": "\(id)", "reason": "\(reason)"])
        case .migrationPhase(let id, let phase):
            logger.info("media migration", metadata: ["session": "\(id)", "phase": "\(phase.rawValue)"])
        case .migrationFinished(let id, let report):
            logger.notice("media migration finished", metadata: [
                "session": "\(id)", "phase": "\(report.phase.rawValue)",
                "switched_at_seq": "\(report.switchedAtSequence.map(String.init) ?? "-")",
                "switched_at_timestamp": "\(report.switchedAtTimestamp.map(String.init) ?? "-")",
                "frames_skipped": "\(report.framesSkipped)", "reason": "\(report.reason ?? "")",
            ])
        case .qualityAlert(let id, let alert):
            logger.warning("media session loss above the threshold", metadata: [
                "session": "\(id)", "fraction_lost": "\(alert.fractionLost)", "peak": "\(alert.peakFractionLost)",
            ])
            qualityHandler.withLock { $0 }?(id, alert)
        case .refused(let why):
            logger.notice("media relay refused", metadata: ["reason": "\(why)"])
        }
    }
}
