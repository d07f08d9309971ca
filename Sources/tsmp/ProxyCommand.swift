import ArgumentParser
import ControlPlane
import Engine
import Foundation
import Gateway
import GatewayHost
import Logging
import Wire

enum ProxyDefaults {
    static let tun = "tsmp0"
}

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the splicing proxy on this gateway (root, or CAP_NET_ADMIN + CAP_NET_RAW), or clean up after a crashed one.",
        discussion: """
        `tsmp proxy ...` is `tsmp proxy run ...`. See `tsmp proxy run --help` for the flags.

        Examples:
          tsmp proxy --devices gw-laptop,gw-phone --uplink gw-srv --nat 10.2.0.1 --intercept tcp/8080
          tsmp proxy cleanup
        """,
        subcommands: [ProxyRunCommand.self, ProxyCleanupCommand.self],
        defaultSubcommand: ProxyRunCommand.self)
}

struct ProxyRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Splice managed TCP flows in user space until SIGINT/SIGTERM.",
        discussion: """
        Creates the TUN device, policy-routing rules and a route table through netlink, \
        forwards managed flows through the engine (super-segments written back into the TUN), \
        hands busy plain flows to the kernel's forwarding through an nftables table until one \
        migrates (--no-kernel-path: never), and on SIGINT/SIGTERM removes every address, \
        route, rule, table and device it added. Traffic that is not managed is never touched.

        Restarts: each flow's durable facts (NAT port, sequence and timestamp offsets, \
        options, kernel path) are checkpointed per flow event in /run/tsmp. After a crash \
        (kill -9), or a SIGTERM with --keep-state, the rules stay and managed traffic is \
        dropped (never forwarded un-NAT'd) until a `tsmp proxy run` with the same options \
        takes the configuration and the flows over: they continue with their NAT ports, \
        and the kernel path keeps forwarding its flows meanwhile. Other options are refused \
        with the differences named; `tsmp proxy cleanup` removes everything, flows included.

        ICMP errors about managed flows (fragmentation needed, port unreachable, time \
        exceeded) are passed to the end that sent the quoted segment, translated as a NAT \
        does (RFC 5508), so path MTU discovery and refused connections work through the \
        proxy. --clamp-mss (on by default) also lowers the MSS of forwarded SYNs to what the \
        --uplink and --devices links carry (their MTU less 40).

        Transparent gateway: devices route through this box; flows from --devices interfaces \
        to --intercept ports are managed and the server sees --nat.
        Service address: devices connect to VIP:PORT and the proxy splices to HOST:PORT.

        Examples:
          tsmp proxy --devices eth1,eth2 --uplink eth0 --nat 192.0.2.1 --intercept tcp/80 --intercept tcp/8000-8100
          tsmp proxy --devices eth1 --uplink eth0 --nat 192.0.2.1 --service 198.51.100.7:443=203.0.113.5:443
          tsmp proxy --devices eth1 --uplink eth0 --nat 192.0.2.1 --nat 2001:db8::1 --intercept tcp/80   # IPv4 and IPv6 (NAT66)
          tsmp proxy --devices eth1 --uplink eth0 --nat 192.0.2.1 --intercept rtsp/554 --intercept rtsp/8554   # video sessions (RTSP, RTP/UDP)
          tsmp proxy --devices eth1 --uplink eth0 --nat 192.0.2.1 --media-service 198.51.100.7:554=203.0.113.5:554
          tsmp proxy ... --nat 2001:db8::1 --service [2001:db8:7::7]:443=[2001:db8:5::5]:443
          tsmp proxy ... --metrics 127.0.0.1:9464 --capture /tmp/proxy.pcapng --log-level debug   # dashboard: http://127.0.0.1:9464/
          tsmp proxy ... --credentials gw1.cred --listen 0.0.0.0:7444    # devices ask for migrations (MFR)
          tsmp proxy ... --no-kernel-path               # every packet through the engine (no nftables table)
          tsmp proxy ... --no-clamp-mss                 # forward SYNs with the MSS their sender announced
          tsmp proxy ... --no-reassemble                # no conntrack for fragment reassembly (fragments of managed flows are lost)
          tsmp proxy ... --keep-state                   # SIGTERM keeps the flows for the next start (restart, upgrade)
        """)

    @Option(help: "Device-side interfaces, comma separated.", transform: { $0.split(separator: ",").map(String.init) })
    var devices: [String]

    @Option(help: "The interface toward the servers.")
    var uplink: String

    @Option(help: ArgumentHelp("The source address servers see: an address of this gateway or one routed to it. Repeat it with an IPv6 address to manage IPv6 flows too (at most one per family; an IPv4 one is required).",
                               valueName: "address"))
    var nat: [AddressArgument]

    @Option(help: "Ports of --nat used for server-side connections (keep it out of the local ephemeral range).")
    var natPorts: PortRange = EngineConfig.defaultNATPorts

    @Option(help: "Manage flows from the device interfaces to these ports: tcp/PORT or tcp/LO-HI (TCP splicing), rtsp/PORT or rtsp/LO-HI (RTSP sessions with RTP/RTCP over UDP, relayed and migrated at a GOP boundary). Repeatable.")
    var intercept: [InterceptSpec] = []

    @Option(help: "Publish VIP:PORT for RTSP sessions (service mode) and relay them to HOST:PORT, RTP/RTCP over UDP, migrated at a GOP boundary ([VIP6]:PORT=[HOST6]:PORT with an IPv6 --nat). Repeatable.")
    var mediaService: [ServiceMapping] = []

    @Option(help: "With --intercept rtsp/...: the media relay's ports: the first its listening port, the next even one and its neighbour the device-side UDP pair, then one UDP pair per relayed stream (TCP: its connections to servers). Keep it out of --nat-ports.")
    var mediaPorts: PortRange = MediaRelaySettings.defaultPorts

    @Option(help: "With --intercept rtsp/...: the fraction of packets lost (RTCP receiver reports, 0-1) above which a media session is reported as degraded.")
    var mediaLossThreshold: Double = 0.1

    @Option(help: "With --intercept rtsp/...: seconds the loss must stay above the threshold before the alert.")
    var mediaLossHold: Double = 5

    @Option(help: "Publish VIP:PORT and splice it to HOST:PORT; IPv6 in brackets, the two of either family ([VIP6]:PORT=HOST4:PORT: IPv6 devices reach an IPv4 server). Repeatable.")
    var service: [ServiceMapping] = []

    @Option(help: "Name of the TUN device to create.")
    var tun: String = ProxyDefaults.tun

    @Option(help: ArgumentHelp("The local control socket for tsmp flows / tsmp migrate (root and the proxy's own user only, mode 0600; default: /run/tsmp/netns-INODE/TUN.sock, which those commands find by themselves).",
                               valueName: "path"))
    var control: String?

    @Option(help: "Serve Prometheus metrics on ADDR:PORT at /metrics, and a read-only dashboard at / (flows, migrations and their pictures; plain HTTP: keep it on loopback or a management network).")
    var metrics: IPv4Endpoint?

    @Flag(inversion: .prefixedNo, help: "With --metrics, also serve the read-only dashboard and its JSON routes (they show every flow's addresses). --no-dashboard: /metrics alone.")
    var dashboard = true

    @Option(help: "Record every packet the engine reads and writes to this pcapng file (Linux cooked, with direction; each migration phase is a comment on the flow's next packet).")
    var capture: String?

    @Flag(inversion: .prefixedNo, help: "Segmentation and checksum offload on the TUN: 64 KB super-segments in and out, written back into the TUN. --no-offload: one packet per syscall through a raw socket.")
    var offload = true

    @Option(help: "TUN queues (IFF_MULTI_QUEUE), each with its own engine shard and thread; default: the online cores, at most 16. 1: a single-queue TUN.")
    var queues: Int?

    @Flag(inversion: .prefixedNo, help: "Hand busy plain flows to the kernel's forwarding (a stateless nftables rewrite, no copy to user space); a migration takes a flow back first. Transparent flows only. --no-kernel-path: every packet through the engine.")
    var kernelPath = true

    @Flag(inversion: .prefixedNo, help: "Lower the MSS option of forwarded SYNs to what the --uplink (toward servers) and --devices (toward devices) links carry: their MTU less 40. A narrower link further away is learned from ICMP fragmentation-needed, which the proxy translates either way. --no-clamp-mss: SYNs keep the MSS their sender announced.")
    var clampMSS = true

    @Flag(inversion: .prefixedNo, help: "Reassemble IPv4 fragments before routing (an nftables table that turns conntrack on in this namespace; the TUN's MTU becomes 65535), so every piece of a managed flow is NAT'd like the rest. --no-reassemble: fragments of managed flows are dropped by the engine or pass un-NAT'd.")
    var reassemble = true

    @Flag(help: "On SIGTERM, stop without removing the gateway's configuration and keep the flows' checkpoint (/run/tsmp/netns-INODE/TUN.flows.N): managed traffic is dropped until the next `tsmp proxy run` with the same options takes the flows over (a restart, an upgrade). SIGINT still removes everything; so does `tsmp proxy cleanup`.")
    var keepState = false

    @Option(help: "With --kernel-path: hand a flow over once established this many seconds, active, and past 256 KiB.")
    var kernelPathAfter: Double = 1

    @Option(help: "The TUN's own address when offloads are on (the kernel's loose reverse-path check needs one).")
    var tunAddress: IPv4Address = ProxyOptions.defaultTunAddress

    @Option(help: "The proxy's credential (`tsmp namespace proxy-add`): enables the device-facing endpoint.")
    var credentials: String?

    @Option(help: "The namespace's URL (default: the one in --credentials).")
    var namespace: String?

    @Option(help: "ADDR:PORT of the device-facing endpoint (MFRs from devices, mutual TLS): an IPv4 address, [IPv6] or a host name.",
            transform: { try ListenAddress(parsing: $0) })
    var listen: ListenAddress?

    @OptionGroup var lab: InsecureLabOption
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if (credentials == nil) != (listen == nil) {
            throw ValidationError("--credentials and --listen go together: the device-facing endpoint needs both")
        }
        if namespace != nil && credentials == nil { throw ValidationError("--namespace needs --credentials") }
        if let namespace { try lab.check(namespace, "--namespace") }
        if devices.isEmpty || devices.contains(where: \.isEmpty) { throw ValidationError("--devices needs at least one interface name") }
        if devices.contains(uplink) { throw ValidationError("--uplink \(uplink) is also listed in --devices") }
        if tun.isEmpty || tun.count > 15 { throw ValidationError("--tun must be 1 to 15 characters (an interface name)") }
        if let control, let problem = LocalControlSocket.validate(control) { throw ValidationError(problem) }
        let v4 = nat.filter { $0.address.family == .ipv4 }, v6 = nat.filter { $0.address.family == .ipv6 }
        if v4.isEmpty { throw ValidationError("--nat needs an IPv4 address (give --nat twice, once per family, to manage IPv6 too)") }
        if v4.count > 1 || v6.count > 1 {
            throw ValidationError("--nat takes at most one address per family (got \(nat.map(\.address.description).joined(separator: ", ")))")
        }
        if let problem = engineConfig.problem(), !(media != nil && tcpIntercepts.isEmpty && service.isEmpty) { throw ValidationError(problem) }
        if let media, let problem = media.problem(natPorts: natPorts) { throw ValidationError(problem) }
        if let both = mediaService.first(where: { m in service.contains { $0.vip == m.vip } }) {
            throw ValidationError("\(both.vip) is published both by --service (TCP splicing) and --media-service")
        }
        if !(kernelPathAfter >= 0.1 && kernelPathAfter <= 86_400) { throw ValidationError("--kernel-path-after must be 0.1 to 86400 seconds") }
        if let queues, queues < 1 || queues > 256 { throw ValidationError("--queues must be 1 to 256 (the kernel's limit per TUN)") }
        if queueCount > natPorts.count {
            throw ValidationError("--queues \(queueCount) needs at least as many --nat-ports (\(natPorts) has \(natPorts.count)): each queue owns a share of them")
        }
        // Capabilities, not uid 0: a service user with CAP_NET_ADMIN and CAP_NET_RAW runs it too.
        if let problem = ProxyCapabilities.problem() { throw ValidationError(problem) }
        if let problem = ProxyCapabilities.tunDeviceProblem() { throw ValidationError(problem) }
    }

    var tcpIntercepts: [PortRange] { intercept.filter { !$0.rtsp }.map(\.range) }

    /// The media relay's settings, when any rtsp/PORT is intercepted.
    var media: MediaRelaySettings? {
        let rtsp = intercept.filter(\.rtsp).map(\.range)
        guard !rtsp.isEmpty || !mediaService.isEmpty else { return nil }
        var settings = MediaRelaySettings(rtspPorts: rtsp, ports: mediaPorts, nat: nat.lazy.compactMap(\.address.ipv4).first ?? IPv4Address(0),
                                          lossThreshold: mediaLossThreshold, lossHold: mediaLossHold)
        settings.services = mediaService.map { ($0.vip, $0.target) }
        settings.nat6 = nat.lazy.compactMap(\.address.ipv6).first
        return settings
    }

    /// `--queues`, or the online cores (at most 16, at most one per NAT port).
    var queueCount: Int {
        queues ?? max(1, min(ProcessInfo.processInfo.activeProcessorCount, 16, natPorts.count))
    }

    var engineConfig: EngineConfig {
        var config = EngineConfig(nat: nat.lazy.compactMap(\.address.ipv4).first ?? IPv4Address(0),
                                  nat6: nat.lazy.compactMap(\.address.ipv6).first, natPorts: natPorts, intercepts: tcpIntercepts, services: service,
                                  kernelPath: kernelPath && !tcpIntercepts.isEmpty ? KernelPathPolicy(after: .milliseconds(Int64(kernelPathAfter * 1000))) : nil)
        // A restarted proxy does not begin with the ports its predecessor's flows left in TIME-WAIT.
        config.natPortStart = UInt32.random(in: 0...UInt32.max)
        return config
    }

    func run() async throws {
        logging.bootstrap()
        var deviceAPI: DeviceAPISettings?
        if let credentials, let listen {
            var credential: Credential
            do {
                credential = try Credential.load(from: credentials)
            } catch {
                FileHandle.standardError.write(Data("tsmp proxy: credentials \(credentials): \(error)\n".utf8))
                throw ExitCode(1)
            }
            guard credential.identity.role == .proxy else {
                FileHandle.standardError.write(Data("tsmp proxy: \(credentials) is a credential of \(credential.identity), not of a proxy (`tsmp namespace proxy-add`)\n".utf8))
                throw ExitCode(1)
            }
            if let namespace { credential.namespaceURL = namespace }
            deviceAPI = DeviceAPISettings(host: listen.host, port: listen.port, credential: credential, insecureLab: lab.insecureLab)
        }
        var engine = engineConfig
        if clampMSS { engine.mssClamp = Self.mssClamp(uplink: uplink, devices: devices) }
        var options = ProxyOptions(devices: devices, uplink: uplink, engine: engine, tunName: tun,
                                   control: control ?? LocalControlSocket.defaultPath(tun: tun), metrics: metrics, capturePath: capture,
                                   offload: offload, tunAddress: tunAddress, deviceAPI: deviceAPI,
                                   queues: queueCount)
        options.dashboard = dashboard
        options.reassemble = reassemble
        options.keepStateOnTerm = keepState
        options.media = media
        do {
            try await ProxyService(options: options, logger: Logger(label: "tsmp.proxy")).run()
        } catch let error as ProxyService.Failure {
            FileHandle.standardError.write(Data("tsmp proxy: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct ProxyCleanupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Remove what a crashed proxy left in the kernel (rules, routes, TUN, sysctls).",
        discussion: """
        Reads the state files the proxies of this network namespace left in /run/tsmp/netns-INODE, removes every object they list, then \
        removes any policy rule or route tagged with tsmp's protocol number and restores \
        the kernel's `0: from all lookup local` rule if it was moved. Safe to run twice, and \
        when nothing is left.

        Example:
          tsmp proxy cleanup
        """)

    func validate() throws {
        if let problem = ProxyCapabilities.problem(needed: [.netAdmin], command: "tsmp proxy cleanup") { throw ValidationError(problem) }
    }

    func run() throws {
        // The command prints what it did itself; the library's log would say it twice.
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .critical
            return handler
        }
        let report = GatewayCleanup.run()
        for line in report.actions { print(line) }
        for state in report.runningProxies {
            print("left alone: \(state) belongs to a proxy that is still running (stop it with SIGTERM; it cleans up itself)")
        }
        if report.actions.isEmpty && report.runningProxies.isEmpty && report.failures.isEmpty { print("nothing to clean up") }
        if !report.failures.isEmpty {
            for f in report.failures { FileHandle.standardError.write(Data("tsmp proxy cleanup: \(f)\n".utf8)) }
            throw ExitCode(1)
        }
    }
}
