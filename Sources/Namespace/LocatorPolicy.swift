/// Which locators the namespace takes from a device (`PUT /v1/locator`, a heartbeat's
/// `locator`). A locator is where proxies send the device's MTRs (SMP draft §6.2.4); it is a
/// hint for reaching the device, never proof of owning traffic (issue 10, finding 1: a device
/// that set its locator to another user's address was shown and given that user's flows).
///
/// Under both policies a locator must be a unicast address a device can hold
/// (`LocatorAddressKind`). Under `.sourceAddress`, the default, it must also be the address the
/// request came from: the only address the namespace has seen the device at. `.unattributed`
/// skips that comparison, for deployments where devices reach the namespace through a NAT
/// (the namespace then sees the NAT's address, not the device's).
public enum LocatorPolicy: String, Sendable, Equatable {
    case sourceAddress
    case unattributed

    /// Refuses (`.invalid`, with the reason) a locator this policy does not take from a request
    /// that came from `source` (an address literal; nil when the transport has none, e.g. a
    /// Unix socket). Changes nothing: the caller stores the locator only when this returns.
    public func check(_ locator: Locator, cameFrom source: String?) throws(NamespaceError) {
        if let reason = LocatorAddressKind(locator.address).refusal {
            throw .invalid("locator \(locator.address): \(reason)")
        }
        guard self == .sourceAddress else { return }
        guard let source, let seen = Locator.canonicalAddress(source) else {
            throw .invalid("locator \(locator.address): the namespace cannot tell which address this request came from, so it cannot attribute the locator")
        }
        guard seen == locator.address else {
            throw .invalid("locator \(locator.address) is not the address this request came from (\(seen)); "
                + "a device's locator is the address it reaches the namespace from")
        }
    }
}
