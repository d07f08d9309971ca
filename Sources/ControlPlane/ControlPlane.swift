/// ControlPlane: who is speaking, and the HTTP endpoints and clients the proxy, the namespace
/// service and the agents talk through (DESIGN §7; SMP draft §6). It owns identities
/// (`PeerIdentity`, `Credential`, `CertificateAuthority`), mutual TLS (`TLSSetup`), the
/// endpoint (`HTTPEndpoint`, also on a Unix socket for the proxy's local control), its guards
/// (`RequestGuard` with `ReplayJournal`, `EndpointLimits`, `ConnectionAdmission`,
/// `ConnectionDeadlines`), the namespace's routes and server, the agent, and `PeerClient`.
///
/// Invariants of the module:
/// - Who is speaking comes from a verified certificate (or, in `--insecure-lab` only, a header
///   the lab trusts), never from a field of a request body; a refusal says why and changes
///   nothing (`EndpointRequestHandler` answers before any route runs).
/// - Every limit is per peer (identity after the handshake, source address before it); every
///   read has a deadline (handshake, request head, body, idle).
/// - Replay ids outlive a restart (`ReplayJournal`); state files are 0600 in a 0700 directory.
/// - No packet handling here: the data plane is Forwarding's and the engine's.
public enum ControlPlaneModule {}
