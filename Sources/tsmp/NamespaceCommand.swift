import ArgumentParser
import ControlPlane
import Foundation
import Gateway
import Logging
import Namespace
import Telemetry

struct NamespaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "namespace",
        abstract: "The namespace service (TSMPS): users, devices, locators, status; and its admin commands.",
        discussion: """
        Examples:
          tsmp namespace serve --db sqlite:/var/lib/tsmp/ns.db --listen 0.0.0.0:7443 --state /var/lib/tsmp \\
              --url https://ns.example:7443
          tsmp namespace register bob@example.com --device laptop --namespace https://ns.example:7443 \\
              --admin /var/lib/tsmp/admin.cred --out laptop.cred
          tsmp namespace proxy-add gw1 --namespace https://ns.example:7443 --admin /var/lib/tsmp/admin.cred --out gw1.cred
        """,
        subcommands: [NamespaceServeCommand.self, NamespaceRegisterCommand.self, NamespaceProxyAddCommand.self])
}

struct NamespaceServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the namespace API until SIGINT/SIGTERM.",
        discussion: """
        On first start creates a CA in --state (ca.key, ca.pem) and the admin credential \
        --state/admin.cred, which registers users and proxies. Devices and proxies then speak \
        to the service with mutual TLS using credentials it issued. Data lives in SQLite \
        (embedded, WAL; the default) or PostgreSQL (several gateways share one namespace). \
        Devices whose heartbeats stop for --missed-heartbeats intervals are marked offline. \
        A device's locator (where proxies send its MTRs) must be the address its request came \
        from, and never a special address (0.0.0.0, ::, loopback, multicast, 255.255.255.255, \
        0/8, 240/4); see --allow-unattributed-locators. The state directory is kept at mode \
        0700 (a looser one is tightened, with a notice) and the files in it, and the SQLite \
        database, at 0600.

        Examples:
          tsmp namespace serve --db sqlite:/var/lib/tsmp/ns.db --listen [::]:7443 --state /var/lib/tsmp \\
              --url https://ns.example:7443
          tsmp namespace serve --db postgresql://tsmp@db.example:5432/tsmp --listen 10.0.0.5:7443 \\
              --state /var/lib/tsmp
        """)

    @Option(help: "sqlite:PATH or postgresql://USER[:PASSWORD]@HOST:PORT/DB.")
    var db: String

    @Option(help: "ADDR:PORT to serve on: an IPv4 address, [IPv6] or a host name; 0.0.0.0 or [::] for every address (then --url is needed).",
            transform: { try ListenAddress(parsing: $0) })
    var listen: ListenAddress

    @Option(help: "Directory for the CA and the admin credential (created, mode 0700).")
    var state: String

    @Option(help: "The URL clients reach this service at, written into credentials (default: from --listen; needed when --listen is a wildcard).")
    var url: String?

    @Option(help: MetricsAddress.help)
    var metrics: MetricsAddress?

    @Option(help: "Seconds between a device's heartbeats.")
    var heartbeatInterval: Double = 10

    @Option(help: "Missed heartbeats after which a device is offline.")
    var missedHeartbeats: Int = 3

    @Flag(help: """
        Take a device's locator (heartbeats, locator updates) even when it is not the address the \
        request came from, for devices that reach the namespace through a NAT. Special addresses \
        (unspecified, loopback, multicast, broadcast, reserved) are refused all the same. The proxy \
        proves flow ownership itself, so this only affects where MTRs are sent.
        """)
    var allowUnattributedLocators = false

    @OptionGroup var lab: InsecureLabOption
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard db.hasPrefix("sqlite:") || db.hasPrefix("postgresql://") || db.hasPrefix("postgres://") else {
            throw ValidationError("--db must be sqlite:PATH or postgresql://..., not \"\(db)\"")
        }
        guard heartbeatInterval >= 0.05 && heartbeatInterval <= 3600 else { throw ValidationError("--heartbeat-interval must be within [0.05, 3600] seconds") }
        guard missedHeartbeats >= 1 && missedHeartbeats <= 100 else { throw ValidationError("--missed-heartbeats must be 1-100") }
        if let url { try lab.check(url, "--url") }
        if url == nil && listen.isWildcard {
            throw ValidationError("--listen \(listen) takes every address, so it says none that clients can reach: give the URL they reach this service at with --url (it goes into every credential), e.g. --url https://ns.example:\(listen.port)")
        }
    }

    func run() async throws {
        // Everything this service creates (state directory, CA key, admin credential, database
        // and its -wal/-shm files) is for its own user only: 0700 directories, 0600 files.
        _ = umask(0o077)
        logging.bootstrap()
        let scheme = lab.insecureLab ? "http" : "https"
        let host = listen.host
        var options = NamespaceServer.Options(
            database: db, host: listen.host, port: listen.port, stateDirectory: state,
            advertisedURL: url ?? "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(listen.port)",
            insecureLab: lab.insecureLab, heartbeatIntervalMillis: Int64(heartbeatInterval * 1000),
            missedHeartbeats: missedHeartbeats,
            locatorPolicy: allowUnattributedLocators ? .unattributed : .sourceAddress)
        options.metrics = metrics.map { ($0.host, $0.port) }
        let signals = SignalWaiter(signals: [SIGINT, SIGTERM])
        try await Self.reportingFailures {
            do {
                let logger = Logger(label: "tsmp.namespace")
                try await NamespaceServer(options: options, logger: logger).run {
                    // Serving now: tell systemd (Type=notify), then wait for the signal.
                    let notifier = ServiceNotifier()
                    let watchdog = notifier.serving(status: "namespace serving on \(listen)", logger: logger)
                    _ = await signals.next()
                    notifier.leaving(watchdog: watchdog, logger: logger)
                }
            } catch {
                throw RuntimeFailure("namespace serve", "\(error)")
            }
        }
    }
}

struct NamespaceRegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Register a user with its first device; write that device's credential.",
        discussion: """
        The device's key is made here and never sent; the namespace signs its certificate. \
        The credential file (mode 0600) carries the DID, the key, the certificate, the \
        namespace's URL and CA: everything the device's agent and `tsmp migrate` need. \
        Until the namespace answers, the key waits in OUT.key-pending (mode 0600): if no answer \
        comes (a timeout, a crash), run the same command again; it repeats the request with that \
        key and the namespace answers it like the first time.

        Example:
          tsmp namespace register bob@example.com --device laptop --namespace https://10.1.0.1:7443 \\
              --admin /var/lib/tsmp/admin.cred --out laptop.cred
        """)

    @Argument(help: "The user's e-mail address (its UID).")
    var email: String

    @Option(help: "The first device's name (its DID is NAME.EMAIL).")
    var device: String

    @Option(help: "The namespace's URL.")
    var namespace: String

    @Option(help: "The admin credential (--state/admin.cred of `tsmp namespace serve`).")
    var admin: String

    @Option(help: "Where to write the device's credential.")
    var out: String

    @OptionGroup var lab: InsecureLabOption

    func validate() throws { try lab.check(namespace, "--namespace") }

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let adminCredential = try loadCredential(admin, command: "namespace register")
        let identity: PeerIdentity
        do { identity = try .device("\(device).\(email.lowercased())") } catch { throw RuntimeFailure("namespace register", "\(error)") }
        try await issue(identity, command: "namespace register", adminCredential: adminCredential, namespace: namespace,
                        insecureLab: lab.insecureLab, out: out) { csr in
            ("/v1/users", RegisterUserRequest(user: email, device: device, csr: csr))
        }
    }
}

struct NamespaceProxyAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-add",
        abstract: "Register a proxy; write its credential.",
        discussion: """
        Example:
          tsmp namespace proxy-add gw1 --namespace https://10.1.0.1:7443 --admin /var/lib/tsmp/admin.cred --out gw1.cred
        """)

    @Argument(help: "The proxy's name.")
    var name: String

    @Option(help: "The namespace's URL.")
    var namespace: String

    @Option(help: "The admin credential.")
    var admin: String

    @Option(help: "Where to write the proxy's credential.")
    var out: String

    @OptionGroup var lab: InsecureLabOption

    func validate() throws { try lab.check(namespace, "--namespace") }

    func run() async throws { try await Self.reportingFailures(runOrFail) }

    private func runOrFail() async throws {
        let adminCredential = try loadCredential(admin, command: "namespace proxy-add")
        let identity: PeerIdentity
        do { identity = try .proxy(name) } catch { throw RuntimeFailure("namespace proxy-add", "\(error)") }
        try await issue(identity, command: "namespace proxy-add", adminCredential: adminCredential,
                        namespace: namespace, insecureLab: lab.insecureLab, out: out) { csr in
            ("/v1/proxies", RegisterProxyRequest(name: name, csr: csr))
        }
    }
}

/// Makes a key and CSR for `identity`, has the namespace issue it (speaking as `adminCredential`),
/// and writes the new credential to `out`. Nothing is written when anything is refused. The key
/// waits in `OUT.key-pending` (0600) until the namespace answers: when no answer comes (a
/// timeout, a crash), the same command again repeats the request with that key, and the
/// namespace answers it like the first time.
func issue<Body: Encodable & Sendable>(_ identity: PeerIdentity, command: String, adminCredential: Credential, namespace: String,
                                       insecureLab: Bool, out: String,
                                       request: (String) -> (String, Body)) async throws {
    if FileManager.default.fileExists(atPath: out) {
        throw RuntimeFailure(command, "\(out) exists: not overwriting a credential")
    }
    let pending: PendingCredentialKey
    do { pending = try PendingCredentialKey.prepare(for: identity, credentialPath: out) } catch {
        throw RuntimeFailure(command, "\(error)")
    }
    if pending.resumed {
        FileHandle.standardError.write(Data("\(command): repeating an earlier request that got no answer, with its key \(pending.path)\n".utf8))
    }
    do {
        let (path, body) = request(pending.csrPEM)
        let issued: IssuedCredential = try await withEventLoop { group in
            let link = try PeerClient(baseURL: namespace, credential: adminCredential, insecureLab: insecureLab,
                                       expectedServer: .identity(.namespace), group: group)
            return try await link.call("POST", path, json: body)
        }
        let credential = Credential(identity: issued.identity, keyPEM: pending.keyPEM, certificatePEM: issued.certificate,
                                    caPEM: issued.ca, namespaceURL: namespace)
        try credential.write(to: out)
        pending.remove()
        print("\(issued.identity): credential written to \(out)")
    } catch let refusal as PeerClientError {
        if case .refused = refusal {
            pending.remove()
            throw RuntimeFailure(command, "\(refusal)")
        }
        throw RuntimeFailure(command, "\(refusal) (the key stays in \(pending.path): run the same command again to repeat the request)")
    } catch let failure as RuntimeFailure {
        throw failure
    } catch {
        throw RuntimeFailure(command, "\(error)")
    }
}
