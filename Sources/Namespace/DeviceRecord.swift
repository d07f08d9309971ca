/// A device's presence as the namespace tracks it (SMP draft §6.2): online while it heartbeats,
/// offline after missed heartbeats, busy or away when the device says so.
public enum DeviceStatus: String, Codable, Sendable, CaseIterable {
    case online, offline, busy, away
}

/// Everything the namespace stores about one device.
public struct DeviceRecord: Codable, Sendable, Equatable {
    public var did: DeviceID
    public var status: DeviceStatus
    /// Its current address, once it reported one.
    public var locator: Locator?
    /// When its last heartbeat arrived (nil before the first).
    public var lastHeartbeatMillis: Int64?
    /// When it was registered or introduced.
    public var registeredMillis: Int64
    /// The display name its owner gave it (nil: none; the DID's name is shown). Changing it
    /// leaves the DID alone: the DID is what certificates and other users know the device by.
    public var label: String?

    public init(did: DeviceID, status: DeviceStatus, locator: Locator?, lastHeartbeatMillis: Int64?, registeredMillis: Int64,
                label: String? = nil) {
        self.did = did
        self.label = label
        self.status = status
        self.locator = locator
        self.lastHeartbeatMillis = lastHeartbeatMillis
        self.registeredMillis = registeredMillis
    }
}

/// The answer to a resolution request (SRR): where a device is and whether it is there.
public struct Resolution: Codable, Sendable, Equatable {
    public var did: DeviceID
    public var status: DeviceStatus
    public var locator: Locator?

    public init(did: DeviceID, status: DeviceStatus, locator: Locator?) {
        self.did = did
        self.status = status
        self.locator = locator
    }
}
