import Namespace

/// Where the proxy has itself seen each device (issue "Control-plane security", DESIGN §7):
/// the source address of a device's authenticated request, or the address at which a device's
/// agent proved its identity in a TLS handshake the proxy made to it. Flow ownership is read
/// from these and nothing else: a locator in the namespace is a device's own claim, a hint for
/// reaching it, never proof that the traffic from that address is its traffic.
///
/// Invariants:
/// - A device is where it was seen last (one address at a time): a new sighting replaces the old.
/// - An address is attributed to a device only while no other device was seen there within
///   ``ambiguityWindow``: two devices behind one address (a NAT) make it ambiguous, and the
///   proxy refuses to guess whose flows come from it.
/// - At most ``capacity`` devices are remembered; the one seen longest ago is forgotten first.
///   Forgetting only ever makes the proxy ask for a fresh sighting, never widens ownership.
public struct DeviceSightings: Sendable {
    /// Milliseconds on a monotonic clock (the caller's).
    public typealias Millis = Int64

    public struct Sighting: Sendable, Equatable {
        public var address: String
        public var atMillis: Millis
    }

    /// Why an address can't be attributed to one device.
    public struct Ambiguity: Error, Equatable, CustomStringConvertible {
        public var address: String
        public var devices: [DeviceID]
        public init(address: String, devices: [DeviceID]) { self.address = address; self.devices = devices }
        public var description: String {
            "\(devices.map(\.description).sorted().joined(separator: " and ")) were both seen at \(address) recently: "
                + "the proxy can't tell whose flows come from that address (devices behind one NAT address can't move flows)"
        }
    }

    public let ambiguityWindowMillis: Millis
    public let capacity: Int
    private var byDevice: [DeviceID: Sighting] = [:]
    /// Devices seen at each address, most recent sighting per device (pruned lazily).
    private var byAddress: [String: [DeviceID: Millis]] = [:]

    public init(ambiguityWindowMillis: Millis = 600_000, capacity: Int = 65_536) {
        self.ambiguityWindowMillis = ambiguityWindowMillis
        self.capacity = max(1, capacity)
    }

    /// Records that `device` was seen at `address` (canonical text) at `now`.
    public mutating func saw(_ device: DeviceID, at address: String, now: Millis) {
        if let old = byDevice[device], old.address != address {
            // It left `old.address`: it no longer makes that address ambiguous for anyone.
            byAddress[old.address]?[device] = nil
            if byAddress[old.address]?.isEmpty == true { byAddress[old.address] = nil }
        }
        byDevice[device] = Sighting(address: address, atMillis: now)
        byAddress[address, default: [:]][device] = now
        if byDevice.count > capacity { forgetOldest(max(1, capacity / 8)) }
    }

    /// Where `device` was seen last, if within `maxAgeMillis`.
    public func sighting(of device: DeviceID, now: Millis, maxAgeMillis: Millis) -> Sighting? {
        guard let s = byDevice[device], now - s.atMillis <= maxAgeMillis else { return nil }
        return s
    }

    /// The address whose flows `device` owns: where it was seen, unless another device was
    /// seen at the same address within the window (then ``Ambiguity``).
    public func ownedAddress(of device: DeviceID, now: Millis) -> Result<String?, Ambiguity> {
        guard let s = byDevice[device] else { return .success(nil) }
        let others = (byAddress[s.address] ?? [:]).filter { $0.key != device && now - $0.value <= ambiguityWindowMillis }
        guard others.isEmpty else {
            return .failure(Ambiguity(address: s.address, devices: [device] + others.keys.sorted { $0.description < $1.description }))
        }
        return .success(s.address)
    }

    /// The one device seen at `address` within the window (nil: nobody, or several: ambiguous).
    public func owner(at address: String, now: Millis) -> DeviceID? {
        let recent = (byAddress[address] ?? [:]).filter { now - $0.value <= ambiguityWindowMillis }
        return recent.count == 1 ? recent.keys.first : nil
    }

    /// How many devices are remembered.
    public var count: Int { byDevice.count }

    private mutating func forgetOldest(_ n: Int) {
        for (device, s) in byDevice.sorted(by: { $0.value.atMillis < $1.value.atMillis }).prefix(n) {
            byDevice[device] = nil
            byAddress[s.address]?[device] = nil
            if byAddress[s.address]?.isEmpty == true { byAddress[s.address] = nil }
        }
    }
}
