#if canImport(Glibc)
import Glibc
#endif
import ControlPlane
@preconcurrency import Dispatch
import Engine
import Forwarding
import GatewayHost
import Logging
import NIOCore
import NIOPosix
import PacketIO
import Telemetry
import Wire

/// Everything `tsmp proxy run` was asked to do.
public struct ProxyOptions: Sendable {
    public var devices: [String]
    public var uplink: String
    public var engine: EngineConfig
    public var tunName: String
    /// The local control socket (root only; ``LocalControlSocket``).
    public var control: String
    public var metrics: IPv4Endpoint?
    /// The read-only dashboard beside `/metrics` (`Dashboard`); off: `/metrics` alone, so the
    /// metrics address shows no flow's addresses.
    public var dashboard = true
    public var capturePath: String?
    /// Segmentation and checksum offload on the TUN (DESIGN §2): super-segments in and out,
    /// packets written back into the TUN for the kernel to forward. Off: plain TUN reads and
    /// a raw socket, one wire packet per syscall.
    public var offload: Bool
    /// The TUN's own address when offloads are on (loose rp_filter needs one).
    public var tunAddress: IPv4Address
    public static let defaultTunAddress = IPv4Address(169, 254, 74, 116)
    /// Packets the TUN may queue toward the proxy (the kernel's default is 500).
    public static let tunQueueLength: UInt32 = 10_000
    /// The device-facing endpoint (MFRs from devices; DESIGN §7), when the proxy has a credential.
    public var deviceAPI: DeviceAPISettings?
    /// TUN queues, each with its own engine shard and thread (IFF_MULTI_QUEUE when > 1).
    public var queues: Int
    /// IPv4 fragments are reassembled before routing (`ReassemblyTable`), so every piece of a
    /// managed flow reaches the engine, NAT'd with the rest. Off (`--no-reassemble`): no
    /// conntrack is turned on for it, and fragments of managed flows are dropped or leak.
    public var reassemble = true
    /// SIGTERM stops without removing the gateway's configuration and keeps the flows'
    /// checkpoint, so the next `tsmp proxy run` with the same options takes them over
    /// (restarts, upgrades); managed traffic is dropped meanwhile. SIGINT still removes all.
    public var keepStateOnTerm = false
    /// The media relay (`--intercept rtsp/PORT`, SMP draft §5); nil: no RTSP is relayed.
    public var media: MediaRelaySettings?
    public init(devices: [String], uplink: String, engine: EngineConfig, tunName: String,
                control: String, metrics: IPv4Endpoint?, capturePath: String?,
                offload: Bool = true, tunAddress: IPv4Address = ProxyOptions.defaultTunAddress,
                deviceAPI: DeviceAPISettings? = nil, queues: Int = 1) {
        self.devices = devices; self.uplink = uplink; self.engine = engine; self.tunName = tunName
        self.control = control; self.metrics = metrics; self.capturePath = capturePath
        self.offload = offload; self.tunAddress = tunAddress; self.deviceAPI = deviceAPI
        self.queues = queues
    }
}

/// Where and as whom the proxy serves devices (`tsmp proxy --listen --credentials`).
public struct DeviceAPISettings: Sendable {
    public var host: String
    public var port: Int
    public var credential: Credential
    public var insecureLab: Bool
    public init(host: String, port: Int, credential: Credential, insecureLab: Bool) {
        self.host = host; self.port = port; self.credential = credential; self.insecureLab = insecureLab
    }
}

/// The proxy's life: set up the kernel, forward until SIGINT/SIGTERM, take everything down.
///
/// Order matters and is mirrored on the way out: TUN, kernel rules (each recorded in the
/// state file as it is added), raw socket, capture, data plane, HTTP endpoints; then
/// endpoints, data plane, capture, kernel rules, TUN. A failure at any step undoes the
/// steps before it, so a refused start leaves the gateway as it was.
public struct ProxyService {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    let options: ProxyOptions
    let logger: Logger

    public init(options: ProxyOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws {
        logger.info("\(FileLimit.raise())")
        // One descriptor per queue; the first creates the device, the others attach to it.
        var tuns: [TunDevice] = []
        do {
            let tunOptions = TunDevice.Options(multiQueue: options.queues > 1, virtioNetHeader: options.offload)
            let first = try TunDevice(name: options.tunName, options: tunOptions)
            tuns.append(first)
            for _ in 1..<max(1, options.queues) { tuns.append(try TunDevice(name: first.name, options: tunOptions)) }
            if options.offload {
                for t in tuns { try t.setOffload([.checksum, .tcp4Segmentation, .tcp6Segmentation, .tcpSegmentationECN]) }
            }
        } catch {
            for t in tuns { try? t.close() }
            throw Failure(description: "cannot create TUN device \(options.tunName) with \(options.queues) queue(s): \(error)")
        }
        let tun = tuns[0]
        // The TUN's queue toward the proxy: at the kernel's default (500 packets) a data-plane
        // thread descheduled for a few milliseconds on a busy machine loses packets there, and
        // the server sees a loss. The TUN is the proxy's own device: nothing to restore.
        do {
            try NetlinkSession().setLinkTxQueueLength(tun.name, ProxyOptions.tunQueueLength)
        } catch {
            logger.warning("could not lengthen the TUN's queue", metadata: ["tun": "\(tun.name)", "error": "\(error)"])
        }
        let setup = GatewaySetup(plan: plan(tunName: tun.name), logger: logger)
        // A previous proxy's flows are read and checked before anything changes in the kernel.
        let checkpoints: FlowCheckpoints
        do {
            checkpoints = try previousCheckpoints(setup: setup, queues: tuns.count)
        } catch {
            for t in tuns { try? t.close() }
            throw error
        }
        let start: GatewaySetup.Start
        do {
            start = try setup.installOrResume()
        } catch {
            for t in tuns { try? t.close() }
            // A failed resume leaves the configuration in place (failing closed) for the next start.
            if case .refused = error { throw Failure(description: "\(error)") }
            let leftovers = setup.teardown()
            throw Failure(description: "\(error)" + (leftovers.isEmpty ? "" : "; undoing it also failed: \(leftovers.joined(separator: "; "))"))
        }
        if start == .installed { setup.store.removeCheckpoints(tun: tun.name) }
        // A start that took flows over keeps the configuration if it fails later, for the next try.
        var teardownDone = start != .installed
        defer { if !teardownDone { _ = setup.teardown() } }

        var queues: [(input: any PacketDevice, output: any PacketDevice)] = []
        let writer: PcapFileWriter?
        do {
            // With offloads each TUN queue takes its packets back (super-segments stay whole);
            // without, a raw socket per queue sends each wire packet.
            for t in tuns { queues.append((t, options.offload ? t : try RawSocketDevice(enableIPv6: options.engine.nat6 != nil))) }
            writer = try options.capturePath.map { try PcapFileWriter(path: $0, format: .pcapng) }
        } catch {
            throw Failure(description: "\(error)")
        }
        var kernelPath: KernelPath?
        if let table = setup.plan.kernelPath {
            do {
                kernelPath = try KernelPath(table: table)
            } catch {
                throw Failure(description: "cannot open nftables for the kernel path: \(error)")
            }
        }
        var adopting = checkpoints
        if case .resumed = start, let kernelPath {
            // The flows the table forwards are the ones in the kernel, whatever the checkpoint says.
            do {
                let removed: Int
                (adopting, removed) = try kernelPath.reconcile(checkpoints)
                logger.info("kernel path taken over", metadata: [
                    "flows_in_kernel": "\(adopting.previous.reduce(0) { $0 + $1.flows.filter(\.inKernel).count })",
                    "stale_entries_removed": "\(removed)",
                ])
            } catch {
                throw Failure(description: "cannot read the kernel path's table to take its flows over: \(error)")
            }
        }
        let dataPlane: ShardedDataPlane
        do {
            dataPlane = try ShardedDataPlane(config: options.engine, queues: queues, capture: writer,
                                             kernelPath: kernelPath, checkpoints: adopting, logger: Logger(label: "tsmp.dataplane"))
        } catch let refused as ShardedDataPlane.Refused {
            throw Failure(description: refused.description)
        }
        reportAdoption(start, dataPlane.adoption, adopting)
        var media: MediaRelayService?
        if let settings = options.media {
            do {
                media = try MediaRelayService(settings: settings, logger: Logger(label: "tsmp.media"))
            } catch {
                let hint = error.errno == EADDRNOTAVAIL
                    ? " (the relay binds its server-side ports on --nat, which must then be an address of this gateway, not one routed to it)" : ""
                throw Failure(description: "cannot open the media relay's sockets (--media-ports \(settings.ports) on \(settings.nat)): \(error)\(hint)")
            }
            media?.start()
        }
        defer { media?.stop() }
        let relay = media
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var endpoints: [HTTPEndpoint] = []
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM])
        dataPlane.start()
        do {
            endpoints.append(try await HTTPEndpoint.startLocal(
                path: options.control, allowedUIDs: LocalControlSocket.allowedUIDs, group: group,
                logger: logger, routes: ControlAPI.routes(engine: dataPlane, media: media).merging(
                    ControlAPI.mediaRoutes(media, reachability: DeviceReachability(deviceInterfaces: options.devices)),
                    uniquingKeysWith: { a, _ in a }).merging(
                    ControlAPI.migrationRoutes(engine: dataPlane, reachability: DeviceReachability(deviceInterfaces: options.devices)),
                    uniquingKeysWith: { a, _ in a })))
            if let d = options.deviceAPI {
                let api = try DeviceAPI(engine: dataPlane, options: .init(credential: d.credential, insecureLab: d.insecureLab),
                                        reachability: DeviceReachability(deviceInterfaces: options.devices), group: group,
                                        logger: Logger(label: "tsmp.devices"), media: media)
                media?.onQualityAlert { id, alert in Task { await api.qualityAlert(id, alert) } }
                endpoints.append(try await HTTPEndpoint.start(
                    host: d.host, port: d.port, group: group, logger: logger, routes: api.routes,
                    security: d.insecureLab ? .insecureLab : .mutualTLS(try ServerTLS(credential: d.credential))))
                logger.info("serving devices", metadata: [
                    "listen": "\(d.host):\(d.port)", "as": "\(d.credential.identity)",
                    "namespace": "\(d.credential.namespaceURL)", "tls": "\(d.insecureLab ? "off (--insecure-lab)" : "mutual")",
                ])
            }
            if let m = options.metrics {
                let metrics = EngineMetrics()
                endpoints.append(try await HTTPEndpoint.start(
                    host: m.address.description, port: Int(m.port), group: group, logger: logger,
                    routes: Dashboard.metricsAddressRoutes(metrics: { _ in
                        let (status, writeErrors) = await dataPlane.status()
                        let (migrations, flowsLimit) = await dataPlane.migrationStats()
                        return HTTPEndpoint.Response(contentType: "text/plain; version=0.0.4",
                                                     body: metrics.render(status, deviceWriteErrors: writeErrors)
                                                         + Array(MigrationMetrics.render(migrations, flowsLimit: flowsLimit).utf8)
                                                         + Array((relay.map { MediaMetrics.render($0.summaries(), $0.counters()) } ?? "").utf8))
                    }, dashboard: options.dashboard, engine: dataPlane, media: relay)))
            }
        } catch {
            dataPlane.stop()
            await dataPlane.waitUntilStopped()
            for e in endpoints { await e.close() }
            try? await group.shutdownGracefully()
            throw Failure(description: error is HTTPEndpoint.BindFailure ? "cannot serve on \(error)" : "\(error)")
        }
        logger.info("forwarding", metadata: [
            "tun": "\(tun.name)", "devices": "\(options.devices.joined(separator: ","))", "uplink": "\(options.uplink)",
            "nat": "\(options.engine.nat)\(options.engine.nat6.map { ",\($0)" } ?? "")", "nat_ports": "\(options.engine.natPorts)",
            "intercepts": "\(options.engine.intercepts.map(\.description).joined(separator: ","))",
            "services": "\(options.engine.services.map(\.description).joined(separator: ","))",
            "control": "\(options.control)", "queues": "\(tuns.count)",
        ])

        // systemd (Type=notify): ready now; with WatchdogSec= the pings go on while the data
        // plane's threads still answer a status request.
        let notifier = ServiceNotifier()
        let watchdog = notifier.serving(status: "forwarding on \(tun.name), \(tuns.count) queue(s)", logger: logger) {
            _ = await dataPlane.status()
            return true
        }
        let signal = await signals.next()
        let keep = signal == SIGTERM && options.keepStateOnTerm
        logger.info("stopping", metadata: ["signal": "\(signal)", "keep_state": "\(keep)"])
        notifier.leaving(watchdog: watchdog, logger: logger)
        dataPlane.stop()
        await dataPlane.waitUntilStopped()
        for e in endpoints { await e.close() }
        try? await group.shutdownGracefully()
        media?.stop()
        try? writer?.close()
        let status = dataPlane.finalStatus()
        if keep {
            teardownDone = true
            let failures = dataPlane.writeFinalCheckpoints()
            for t in tuns { try? t.close() }
            if !failures.isEmpty {
                throw Failure(description: "stopped, keeping the gateway's configuration, but the flow checkpoint could not be written: \(failures.joined(separator: "; ")); the next start cannot take the flows over; `tsmp proxy cleanup` removes everything")
            }
            logger.notice("stopped; configuration and flows kept for the next `tsmp proxy run` with the same options (managed traffic is dropped until then; `tsmp proxy cleanup` removes everything)", metadata: [
                "flows": "\(status.flows)", "state": "\(setup.stateFilePath)",
            ])
            return
        }
        let failures = setup.teardown()
        teardownDone = true
        for t in tuns { try? t.close() }
        if !failures.isEmpty {
            throw Failure(description: "stopped, but could not remove everything: \(failures.joined(separator: "; ")); run `tsmp proxy cleanup`")
        }
        logger.info("stopped; kernel state restored", metadata: [
            "packets_forwarded": "\(status.packetsForwarded)", "flows_created": "\(status.flowsCreated)",
            "packets_dropped": "\(status.drops.values.reduce(0, +))",
        ])
    }

    /// What a previous proxy on this TUN left to adopt: read only when `installOrResume` will
    /// take its configuration over (it ended, with this plan), and checked whole. A checkpoint
    /// that cannot be adopted (other options, damaged, a newer format) refuses the start with
    /// nothing changed: `tsmp proxy cleanup` drops those flows and clears the way.
    func previousCheckpoints(setup: GatewaySetup, queues: Int) throws(Failure) -> FlowCheckpoints {
        let tun = setup.plan.tunName
        let paths = (0..<queues).map { setup.store.checkpointPath(forTun: tun, shard: $0) }
        let fingerprint = options.engine.checkpointSetup(shards: queues)
        guard let existing = try? setup.store.load(tun: tun), !existing.process.isRunning, existing.plan == setup.plan else {
            return FlowCheckpoints(setup: fingerprint, paths: paths)
        }
        do {
            return try FlowCheckpoints.readPrevious(setup: fingerprint, paths: paths)
        } catch {
            throw Failure(description: "cannot take over the flows of the proxy that ended on \(tun) (pid \(existing.pid)): \(error); nothing was changed; start with the options it had, or run `tsmp proxy cleanup` to drop those flows")
        }
    }

    func reportAdoption(_ start: GatewaySetup.Start, _ adoption: SpliceEngine.Adoption, _ checkpoints: FlowCheckpoints) {
        guard case .resumed(let pid) = start else { return }
        for line in checkpoints.tornTails { logger.warning("flow checkpoint: \(line)") }
        for (id, reason) in adoption.refused.prefix(20) {
            logger.warning("flow not taken over", metadata: ["flow.id": "\(id)", "reason": "\(reason)"])
        }
        if !adoption.rollingBack.isEmpty {
            logger.notice("flows whose migration the stop interrupted go back to their old devices with the bytes the checkpoint kept",
                          metadata: ["flows": "\(adoption.rollingBack.map(\.description).joined(separator: ","))"])
        }
        if !adoption.resetting.isEmpty {
            logger.warning("flows whose migration the stop interrupted after the new device had sent data (or from a format 1 checkpoint): each is reset on both sides as it next speaks",
                           metadata: ["flows": "\(adoption.resetting.map(\.description).joined(separator: ","))"])
        }
        logger.notice("took over the flows of the proxy that ended", metadata: [
            "previous_pid": "\(pid)", "flows_adopted": "\(adoption.adopted.count)", "flows_refused": "\(adoption.refused.count)",
            "flows_rolling_back": "\(adoption.rollingBack.count)", "flows_reset": "\(adoption.resetting.count)",
        ])
    }

    func plan(tunName: String) -> GatewayPlan {
        GatewayPlan(tunName: tunName, deviceInterfaces: options.devices, uplinkInterface: options.uplink,
                    nat: options.engine.nat, nat6: options.engine.nat6, natPorts: options.engine.natPorts,
                    interceptPorts: options.engine.intercepts, serviceAddresses: options.engine.services.map(\.vip),
                    tunAddress: options.offload ? NetlinkPrefix(options.tunAddress, length: 32) : nil,
                    tunMTU: options.reassemble ? ReassemblyTable.tunMTU : nil,
                    kernelPath: options.engine.kernelPath == nil ? nil
                        : KernelPathTable(tunName: tunName, uplink: options.uplink, nat: options.engine.nat, nat6: options.engine.nat6),
                    reassembly: options.reassemble ? ReassemblyTable(tunName: tunName) : nil,
                    mediaIntercept: options.media.map {
                        MediaInterceptTable(tunName: tunName, deviceInterfaces: options.devices, rtspPorts: $0.rtspPorts,
                                            listenPort: $0.listenPort, devicePort: $0.devicePort, services: $0.services.map(\.published),
                                            ipv6: $0.nat6 != nil)
                    })
    }
}

/// Waits for the first of some signals (which are then ignored by default handling).
public final class SignalWaiter {
    private let stream: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    public init(signals: [Int32]) {
        var continuation: AsyncStream<Int32>.Continuation!
        stream = AsyncStream { continuation = $0 }
        let c = continuation!
        sources = signals.map { sig in
            Glibc.signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { c.yield(sig) }
            source.resume()
            return source
        }
    }

    public func next() async -> Int32 {
        for await s in stream { return s }
        return 0
    }
}
