/// Why a pcap file could not be opened. Each message names the file.
public enum PcapFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Missing, unreadable, empty, or not a pcap / pcapng file (libpcap's reason).
    case cannotOpen(path: String, reason: String)
    /// A link-layer type we cannot take IP packets from.
    case unsupportedLinkType(path: String, dlt: Int32, name: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "cannot read pcap file '\(path)': \(reason)"
        case .unsupportedLinkType(let path, let dlt, let name):
            "pcap file '\(path)' has link type \(name) (DLT \(dlt)); supported: "
                + PcapLinkType.allCases.map(\.description).joined(separator: ", ")
        }
    }
}
