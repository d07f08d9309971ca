/// The nftables table that makes the gateway reassemble IPv4 fragments before routing (issue 13
/// item 11). The policy rules that steer managed flows into the TUN match TCP ports, which only
/// a flow's first fragment carries: without reassembly the first piece reached the engine (and
/// was dropped there) while the others matched no rule and were forwarded as they came, a
/// device's with its own source address, past the NAT. A sender without path MTU discovery
/// (DF clear) behind a narrower link, or a tunnel that fragments, makes such pieces.
///
/// Linux reassembles at prerouting, priority -400 (`nf_defrag_ipv4`), but only in a namespace
/// where conntrack is in use; a rule that reads conntrack state is what turns it on (the same
/// as any stateful firewall on the gateway; with one already there nothing changes). The
/// reassembled packet is then one TCP segment whose ports the rules match; the TUN's MTU is
/// raised to 65,535 so it reaches the engine whole (RFC 791 §3.2: at most 65,535 octets), and
/// what the engine forwards without DF the kernel fragments again for the next link as any
/// router does.
///
/// - Chain `fragments` (prerouting, -450, before reassembly): counts the pieces that arrive.
/// - Chain `conntrack` (prerouting, raw): `ct state untracked` counts nothing of interest; it is
///   there for conntrack (and reassembly) to be on.
public struct ReassemblyTable: Sendable, Equatable, Codable {
    public let name: String

    public init(tunName: String) {
        name = Self.namePrefix + String(tunName.map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    static let namePrefix = "tsmp_reassembly_"

    /// The TUN's MTU with reassembly: the largest IPv4 packet.
    public static let tunMTU: UInt32 = 65_535

    /// The reassembly tables in `nft list tables` output ("table ip NAME" lines).
    public static func tableNames(inListing listing: String) -> [String] {
        NftablesListing.tableNames(listing, family: "ip", prefix: namePrefix)
    }

    /// The whole table, for `nft -f` (one transaction).
    public var ruleset: String {
        """
        table ip \(name) {
            chain fragments {
                type filter hook prerouting priority -450; policy accept;
                ip frag-off & 0x3fff != 0 counter
            }
            chain conntrack {
                type filter hook prerouting priority raw; policy accept;
                ct state untracked counter
            }
        }

        """
    }
}

/// Reading `nft list tables` output.
enum NftablesListing {
    /// The names of the tables of `family` whose name starts with `prefix`.
    static func tableNames(_ listing: String, family: String, prefix: String) -> [String] {
        listing.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.count == 3, words[0] == "table", words[1] == family, words[2].hasPrefix(prefix) else { return nil }
            return String(words[2])
        }
    }
}
