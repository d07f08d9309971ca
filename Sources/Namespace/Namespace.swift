/// Namespace: the namespace service's model and storage (SMP draft §6): users (`UserID`),
/// devices (`DeviceID`, `DeviceRecord`, their status and `Locator`), preferences and scenarios,
/// contacts, and the change log (`Change`) replicas follow (`NamespaceReplica`).
/// `NamespaceService` applies requests to a `NamespaceStore` (SQLite or PostgreSQL through
/// `SQLNamespaceStore`, chosen by `NamespaceDatabase`).
///
/// Invariants of the module:
/// - A request is applied in one transaction or not at all; a refusal is a `NamespaceError`
///   with the reason, and the change log is untouched by it.
/// - A locator is a hint for reaching a device, never proof of owning traffic: `LocatorPolicy`
///   refuses addresses it cannot attribute (unspecified, loopback, multicast, broadcast ...).
/// - Registration is idempotent for the same user and CSR.
/// - No network I/O here: the HTTP routes are ControlPlane's.
public enum NamespaceModule {}
