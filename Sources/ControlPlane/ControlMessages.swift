import Namespace

// The bodies of the control plane's requests and answers (DESIGN §7; openapi/*.yaml).
// Flow and migration ids are the engine's numbers; this module doesn't depend on the engine.

// MARK: Namespace service (openapi/namespace.yaml)

public struct RegisterUserRequest: Codable, Sendable {
    public var user: String
    public var device: String
    public var csr: String
    public init(user: String, device: String, csr: String) { self.user = user; self.device = device; self.csr = csr }
}

public struct RegisterProxyRequest: Codable, Sendable {
    public var name: String
    public var csr: String
    public init(name: String, csr: String) { self.name = name; self.csr = csr }
}

public struct IntroduceDeviceRequest: Codable, Sendable {
    public var name: String
    public var csr: String
    public init(name: String, csr: String) { self.name = name; self.csr = csr }
}

/// A certificate the namespace's CA issued for a key the requester kept.
public struct IssuedCredential: Codable, Sendable {
    public var identity: PeerIdentity
    public var certificate: String
    public var ca: String
    public var device: DeviceRecord?
    public init(identity: PeerIdentity, certificate: String, ca: String, device: DeviceRecord? = nil) {
        self.identity = identity; self.certificate = certificate; self.ca = ca; self.device = device
    }
}

public struct WhoAmI: Codable, Sendable {
    public var identity: PeerIdentity
    public init(identity: PeerIdentity) { self.identity = identity }
}

public struct DeviceList: Codable, Sendable {
    public var user: UserID
    public var devices: [DeviceRecord]
    public var preferences: [DeviceID]
    public var latestModificationMillis: Int64
}

public struct HeartbeatRequest: Codable, Sendable {
    public var knownModificationMillis: Int64?
    public var locator: Locator?
    public init(knownModificationMillis: Int64?, locator: Locator?) {
        self.knownModificationMillis = knownModificationMillis; self.locator = locator
    }
}

public struct StatusEdit: Codable, Sendable {
    public var status: DeviceStatus
    public var atMillis: Int64
    public init(status: DeviceStatus, atMillis: Int64) { self.status = status; self.atMillis = atMillis }
}

public struct PreferencesEdit: Codable, Sendable {
    public var ranking: [DeviceID]
    public var atMillis: Int64
    public init(ranking: [DeviceID], atMillis: Int64) { self.ranking = ranking; self.atMillis = atMillis }
}

/// `PUT /v1/devices/name`: the owner's display name for one of its devices (the DID stays).
public struct RenameDeviceRequest: Codable, Sendable {
    public var did: DeviceID
    public var name: String
    public var atMillis: Int64
    public init(did: DeviceID, name: String, atMillis: Int64) { self.did = did; self.name = name; self.atMillis = atMillis }
}

/// `POST /v1/credentials`: a device renews its own certificate (same key or a new one).
public struct RenewCredentialRequest: Codable, Sendable {
    public var csr: String
    public init(csr: String) { self.csr = csr }
}

/// `POST /v1/contacts/requests`: ask `user` to become a contact, called `name` in your group.
public struct ContactRequest: Codable, Sendable {
    public var user: UserID
    public var name: String
    public init(user: UserID, name: String) { self.user = user; self.name = name }
}

/// `POST /v1/contacts/accept`: confirm request `id`, calling the asker `name`.
public struct ContactAccept: Codable, Sendable {
    public var id: Int64
    public var name: String
    public init(id: Int64, name: String) { self.id = id; self.name = name }
}

/// `PUT /v1/contacts/name`: your new name for a contact.
public struct ContactRename: Codable, Sendable {
    public var user: UserID
    public var name: String
    public var atMillis: Int64
    public init(user: UserID, name: String, atMillis: Int64) { self.user = user; self.name = name; self.atMillis = atMillis }
}

/// `GET /v1/contacts/requests`: pending requests to and from the caller's user.
public struct IntroductionList: Codable, Sendable {
    public var incoming: [Introduction]
    public var outgoing: [Introduction]
    public init(incoming: [Introduction], outgoing: [Introduction]) { self.incoming = incoming; self.outgoing = outgoing }
}

/// `GET /v1/contacts`: the caller's user's contacts with their devices' status.
public struct ContactList: Codable, Sendable {
    public var user: UserID
    public var contacts: [ContactRecord]
    public init(user: UserID, contacts: [ContactRecord]) { self.user = user; self.contacts = contacts }
}

/// `PUT /v1/scenarios`: define (or replace) a scenario; `scenario` null deletes it.
public struct ScenarioEdit: Codable, Sendable {
    public var name: String
    public var scenario: Scenario?
    public var atMillis: Int64
    public init(name: String, scenario: Scenario?, atMillis: Int64) { self.name = name; self.scenario = scenario; self.atMillis = atMillis }
}

/// `PUT /v1/scenarios/active`: choose the scenario in force; `name` null: by time windows.
public struct ScenarioChoice: Codable, Sendable {
    public var name: String?
    public var atMillis: Int64
    public init(name: String?, atMillis: Int64) { self.name = name; self.atMillis = atMillis }
}

public struct ChangeList: Codable, Sendable {
    public var changes: [ChangeEntry]
}

public struct ResolutionList: Codable, Sendable {
    public var devices: [Resolution]
}

// MARK: Proxy, device-facing (openapi/proxy-devices.yaml)

/// MFR (TSMP draft §4.2.1): move the caller's flows `to` a device of its user, or pull a
/// device's flows to the caller (`retrieveFrom`). Flows by the proxy's id, by the device's
/// own source port (the 4-tuple as the device sees it: its locator, that port, any
/// destination), or `all`.
public struct MigrationFromRequest: Codable, Sendable {
    public var flows: [UInt64]?
    public var localPorts: [UInt16]?
    public var all: Bool?
    public var to: DeviceID?
    public var retrieveFrom: DeviceID?
    public var deadlineSeconds: Double?
    /// Media sessions ("m1") instead of flows (SMP draft §5.3).
    public var mediaSessions: [String]?
    public init(flows: [UInt64]? = nil, localPorts: [UInt16]? = nil, all: Bool? = nil, to: DeviceID?, retrieveFrom: DeviceID?,
                deadlineSeconds: Double?, mediaSessions: [String]? = nil) {
        self.flows = flows; self.localPorts = localPorts; self.all = all; self.to = to; self.retrieveFrom = retrieveFrom
        self.deadlineSeconds = deadlineSeconds; self.mediaSessions = mediaSessions
    }
}

// The MFR's answer (`MigrationFromAnswer`) lives in Gateway's MigrationAPI.swift: its results
// are the local API's `MigrationStartResult`, which carries the engine's ids.

// MARK: Agent (openapi/agent.yaml)

/// MTR (TSMP draft §4.2.1): be ready to receive `flow`; answer the source port.
public struct MigrationToRequest: Codable, Sendable, Equatable {
    public var migration: UInt64
    public var flow: UInt64
    /// "ADDRESS:PORT": what the new device connects to (the flow's original destination).
    public var destination: String
    public var fromDevice: DeviceID
    public var toDevice: DeviceID
    /// Bytes of the server's stream the old device received: the new device's first byte is the next.
    public var cutOffsetToDevice: UInt64
    /// Bytes of the device's stream the server received.
    public var cutOffsetToServer: UInt64
    public init(migration: UInt64, flow: UInt64, destination: String, fromDevice: DeviceID, toDevice: DeviceID,
                cutOffsetToDevice: UInt64, cutOffsetToServer: UInt64) {
        self.migration = migration; self.flow = flow; self.destination = destination
        self.fromDevice = fromDevice; self.toDevice = toDevice
        self.cutOffsetToDevice = cutOffsetToDevice; self.cutOffsetToServer = cutOffsetToServer
    }
}

public struct MigrationToAnswer: Codable, Sendable, Equatable {
    public var sourcePort: UInt16
    public init(sourcePort: UInt16) { self.sourcePort = sourcePort }
}

public struct MigrationConnect: Codable, Sendable {
    public var migration: UInt64
    public init(migration: UInt64) { self.migration = migration }
}

public struct Empty: Codable, Sendable {
    public init() {}
}
