import ArgumentParser
import ControlPlane
import Foundation
import Gateway
import Logging
import NIOPosix
import Telemetry
import Wire

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "The device agent: heartbeats to the namespace, receives migrated flows (MTRs) from the proxy.",
        discussion: """
        Keeps this device online in the namespace (heartbeats; a locator update when its \
        address toward --proxy changes) and serves MTRs on --listen, mutual TLS, proxies only. \
        For each MTR it binds a socket, tells the proxy its source port, connects to the flow's \
        destination when told to, and hands the connection over: --exec runs a command with the \
        socket as stdin and stdout and the transfer's details in TSMP_MIGRATION_ID, TSMP_FLOW_ID, \
        TSMP_DESTINATION, TSMP_FROM_DEVICE, TSMP_TO_DEVICE, TSMP_CUT_OFFSET_TO_DEVICE (bytes of \
        the server's stream the old device received), TSMP_CUT_OFFSET_TO_SERVER, TSMP_SOURCE_PORT; \
        --forward bridges it to a local TCP port. Shares (VSR, SMP draft §5.1) forwarded by the \
        proxy run --on-share with TSMP_SHARE_URL, TSMP_SHARE_FROM, TSMP_SHARE_TO and \
        TSMP_SHARE_MODE in its environment: exit status 0 accepts (start the player in the \
        background and return), anything else declines; without --on-share shares are declined. \
        Media sessions (RTSP, SMP draft §5) moved here run --exec in the background with \
        TSMP_MEDIA_URL, TSMP_MEDIA_SESSION and TSMP_MEDIA_FROM (stdin /dev/null): it starts the \
        player on that URL. When a session of this device keeps losing packets, the proxy asks \
        --on-quality with TSMP_MEDIA_SESSION, TSMP_MEDIA_URL, TSMP_MEDIA_LOSS (fraction lost) and \
        TSMP_NEXT_DEVICE (the user's next preferred online device): exit status 0 confirms and \
        the agent asks the proxy to move the session there. \
        Contact requests from other users are logged as they arrive in heartbeat answers.

        Examples:
          tsmp agent --credentials phone.cred --proxy https://10.3.0.1:7444 --listen 0.0.0.0:7445 --exec 'cat > /tmp/rest'
          tsmp agent --credentials phone.cred --proxy https://10.3.0.1:7444 --listen 0.0.0.0:7445 --forward 127.0.0.1:9000
          tsmp agent ... --exec 'ffplay -rtsp_transport udp "$TSMP_MEDIA_URL"' --on-quality 'notify-send "move $TSMP_MEDIA_SESSION to $TSMP_NEXT_DEVICE?"'
        """)

    @Option(help: "This device's credential.")
    var credentials: String

    @Option(help: "The proxy's device-facing URL, http(s)://HOST:PORT with HOST an IPv4 address, [IPv6] or a host name (this device's locator is its address toward it).")
    var proxy: String

    @Option(help: "ADDR:PORT to take MTRs on: an IPv4 address, [IPv6] or a host name; 0.0.0.0 or [::] for every address.",
            transform: { try ListenAddress(parsing: $0) })
    var listen: ListenAddress

    @Option(help: "Run this command (/bin/sh -c) for each received connection, the socket as stdin/stdout.")
    var exec: String?

    @Option(help: "Bridge each received connection to HOST:PORT: an IPv4 address, [IPv6] or a host name.",
            transform: { try HostPort.argument($0, flag: "--forward") })
    var forward: HostPort?

    @Option(help: "Seconds between heartbeats.")
    var heartbeatInterval: Double = 5

    @Option(help: MetricsAddress.help)
    var metrics: MetricsAddress?

    @Option(help: "Run this command (/bin/sh -c) for each share offered to this device; exit status 0 accepts. Quote \"$TSMP_SHARE_URL\".")
    var onShare: String?

    @Option(help: "Run this command (/bin/sh -c) when a media session of this device keeps losing packets; exit status 0 moves it to $TSMP_NEXT_DEVICE.")
    var onQuality: String?

    @OptionGroup var lab: InsecureLabOption
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if (exec == nil) == (forward == nil) { throw ValidationError("give exactly one of --exec CMD and --forward HOST:PORT") }
        if let exec, exec.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--exec needs a command") }
        guard heartbeatInterval >= 0.05 && heartbeatInterval <= 3600 else { throw ValidationError("--heartbeat-interval must be within [0.05, 3600] seconds") }
        try lab.check(proxy, "--proxy")
    }

    func run() async throws {
        logging.bootstrap()
        try await Self.reportingFailures(runOrFail)
    }

    private func runOrFail() async throws {
        let credential = try loadCredential(credentials, command: "agent")
        let logger = Logger(label: "tsmp.agent")
        // Revocation is the namespace's registry, not expiry: renewal is only to keep working.
        if let expires = credential.expires, expires.timeIntervalSinceNow < 30 * 86_400 {
            logger.warning("the credential expires soon: renew it with tsmp device renew --credentials \(credentials)",
                           metadata: ["expires": "\(expires)"])
        }
        logger.info("\(FileLimit.raise())")
        let handoff: ConnectionHandoff = exec.map { .exec($0) } ?? .forward(host: forward!.host, port: UInt16(forward!.port))
        let proxyAt = try HostPort(url: proxy, flag: "--proxy")
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM])
        try await withEventLoop { group in
            let agent: Agent
            let endpoint: HTTPEndpoint
            var metricsEndpoint: HTTPEndpoint?
            do {
                agent = try Agent(options: .init(credential: credential, proxyHost: proxyAt.host, proxyPort: UInt16(proxyAt.port),
                                                 listenHost: listen.host, listenPort: listen.port, handoff: handoff,
                                                 insecureLab: lab.insecureLab,
                                                 heartbeatInterval: .milliseconds(Int64(heartbeatInterval * 1000)),
                                                 onShare: onShare, onQuality: onQuality),
                                  group: group, logger: logger)
                endpoint = try await HTTPEndpoint.start(
                    host: listen.host, port: listen.port, group: group, logger: logger, routes: agent.metrics.instrument(agent.routes),
                    security: lab.insecureLab ? .insecureLab : .mutualTLS(try ServerTLS(credential: credential)))
                if let metrics {
                    do {
                        metricsEndpoint = try await agent.metrics.serve(host: metrics.host, port: metrics.port, group: group, logger: logger)
                    } catch {
                        await endpoint.close()
                        throw RuntimeFailure("agent", "--metrics \(metrics): cannot serve on \(error)")
                    }
                }
            } catch let failure as RuntimeFailure {
                throw failure
            } catch let error as HTTPEndpoint.BindFailure {
                throw RuntimeFailure("agent", "cannot serve MTRs on \(error)")
            } catch {
                throw RuntimeFailure("agent", "\(error)")
            }
            // The first heartbeat says whether the namespace takes this credential at all: a
            // refusal (or a TLS failure) ends the agent; a namespace not reachable yet doesn't.
            do {
                _ = try await agent.heartbeat()
            } catch let error as PeerClientError {
                switch error {
                case .refused, .tls, .wrongServer, .configuration:
                    await endpoint.close()
                    await metricsEndpoint?.close()
                    throw RuntimeFailure("agent", "the namespace refused the first heartbeat: \(error)")
                case .connect, .timeout, .protocolError:
                    logger.warning("namespace not reachable yet; heartbeats will go on", metadata: ["error": "\(error)"])
                }
            } catch {
                await endpoint.close()
                await metricsEndpoint?.close()
                throw RuntimeFailure("agent", "\(error)")
            }
            logger.info("agent running", metadata: [
                "did": "\(agent.did)", "listen": "\(listen)", "handoff": "\(handoff)",
                "locator": "\(agent.currentLocator()?.address ?? "?")",
            ])
            let heartbeats = Task { await agent.runHeartbeats() }
            let notifier = ServiceNotifier()
            let watchdog = notifier.serving(status: "agent \(agent.did) serving on \(listen)", logger: logger)
            let signal = await signals.next()
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            notifier.leaving(watchdog: watchdog, logger: logger)
            heartbeats.cancel()
            _ = await heartbeats.result
            await endpoint.close()
            await metricsEndpoint?.close()
            agent.shutdown()
        }
    }
}
