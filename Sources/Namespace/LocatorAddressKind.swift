/// What an address literal is, for deciding whether it can be a device's locator (its care-of
/// address, SMP draft §6.1.2): a proxy sends MTRs there and matches flows against it, so only a
/// unicast address a device can really hold is usable. Everything else is refused by the
/// namespace's API with the reason `refusal` gives (finding 1 of issue 10: a locator of
/// `0.0.0.0`, `::1` or `255.255.255.255` was accepted).
///
/// The ranges come from the IANA special-purpose address registries (RFC 6890) and:
/// - IPv4 `0.0.0.0/8` "this network" (RFC 1122 §3.2.1.3 (a), (b)): only a source before
///   configuration, never a destination;
/// - IPv4 `127.0.0.0/8` loopback (RFC 1122 §3.2.1.3 (g)), IPv6 `::1` (RFC 4291 §2.5.3);
/// - IPv4 `224.0.0.0/4` multicast (RFC 5771), IPv6 `ff00::/8` (RFC 4291 §2.7);
/// - IPv4 `240.0.0.0/4` reserved (RFC 1112 §4), its last address `255.255.255.255` the limited
///   broadcast (RFC 919 §7);
/// - IPv6 `::` unspecified (RFC 4291 §2.5.2);
/// - IPv6 `::/96` IPv4-compatible addresses, deprecated (RFC 4291 §2.5.5.1);
/// - IPv6 `fe80::/10` link-local (RFC 4291 §2.5.6): meaningful only with a zone, which a
///   locator does not carry.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) never get here as such:
/// `Locator.canonicalAddress` turns them into the IPv4 address they stand for, so a device
/// reaching a dual-stack listener compares equal to the same device on an IPv4 one.
public enum LocatorAddressKind: Equatable, Sendable {
    case unicast
    case unspecified
    case loopback
    case multicast
    case limitedBroadcast
    /// `0.0.0.0/8` other than `0.0.0.0`.
    case thisNetwork
    /// `240.0.0.0/4` other than `255.255.255.255`.
    case reserved
    /// `::/96` other than `::` and `::1`.
    case ipv4Compatible
    case linkLocalIPv6
    /// Not an IPv4 or IPv6 literal at all.
    case notAnAddress

    /// The kind of a canonical address literal (`Locator.address`, or any text `inet_pton` takes).
    public init(_ address: String) {
        guard let canonical = Locator.canonicalAddress(address), let bytes = Locator.addressBytes(canonical) else {
            self = .notAnAddress
            return
        }
        self = bytes.count == 4 ? Self.ipv4(bytes) : Self.ipv6(bytes)
    }

    private static func ipv4(_ b: [UInt8]) -> LocatorAddressKind {
        if b == [0, 0, 0, 0] { return .unspecified }
        if b == [255, 255, 255, 255] { return .limitedBroadcast }
        switch b[0] {
        case 0: return .thisNetwork
        case 127: return .loopback
        case 224...239: return .multicast
        case 240...255: return .reserved
        default: return .unicast
        }
    }

    private static func ipv6(_ b: [UInt8]) -> LocatorAddressKind {
        if b[0] == 0xff { return .multicast }
        if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return .linkLocalIPv6 }
        if b[0..<12].allSatisfy({ $0 == 0 }) {
            if b[12..<16].allSatisfy({ $0 == 0 }) { return .unspecified }
            if b[12..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return .loopback }
            return .ipv4Compatible
        }
        return .unicast
    }

    /// Why an address of this kind can never be a device's locator; nil for unicast.
    public var refusal: String? {
        switch self {
        case .unicast: return nil
        case .unspecified: return "the unspecified address stands for no device"
        case .loopback: return "a loopback address is the namespace's own host, not a device"
        case .multicast: return "a multicast address is a group, not one device"
        case .limitedBroadcast: return "the limited broadcast address is every host on a link, not one device"
        case .thisNetwork: return "0.0.0.0/8 is \"this network\", never a destination (RFC 1122 §3.2.1.3)"
        case .reserved: return "240.0.0.0/4 is reserved (RFC 1112 §4), never a host's address"
        case .ipv4Compatible: return "IPv4-compatible IPv6 addresses (::/96) are deprecated (RFC 4291 §2.5.5.1)"
        case .linkLocalIPv6: return "an IPv6 link-local address needs a zone, which a locator has not"
        case .notAnAddress: return "not an IPv4 or IPv6 address literal"
        }
    }
}
