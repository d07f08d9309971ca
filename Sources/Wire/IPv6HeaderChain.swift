/// What a walk of an IPv6 extension-header chain found (RFC 8200 §4): where the upper-layer
/// header starts and what it is, and the facts about the chain that decide whether a packet
/// may be rewritten (a fragment, a routing header not yet at its final destination).
///
/// The walk is bounded (at most `maximumExtensionHeaders` headers, each inside `end`) and reads
/// nothing outside `bytes[0..<end]`, whatever the bytes hold.
public struct IPv6HeaderChain: Sendable, Equatable {
    /// The protocol after the last header walked (6 TCP, 58 ICMPv6, 59 no next header...).
    public var upperProtocol: UInt8
    /// Where that header starts.
    public var upperOffset: Int
    /// How many extension headers were walked.
    public var extensionHeaders: Int
    /// The fragment header's fields, when the chain has one (RFC 8200 §4.5).
    public var fragment: IPv6Fragment?
    /// A routing header's "segments left" (RFC 8200 §4.4), 0 without one. Not 0 means the
    /// IPv6 destination is not the final one, so upper-layer checksums cover another address
    /// (RFC 8200 §8.1) and the packet is only in transit.
    public var routingSegmentsLeft: UInt8

    /// More extension headers than this is refused: RFC 8200 §4.1 recommends at most one of
    /// each kind (two destination options), real packets carry one or two; 8 leaves room.
    public static let maximumExtensionHeaders = 8

    /// Protocol numbers (IANA "Assigned Internet Protocol Numbers").
    public enum Next {
        public static let hopByHop: UInt8 = 0, tcp: UInt8 = 6, routing: UInt8 = 43, fragment: UInt8 = 44
        public static let icmpv6: UInt8 = 58, noNextHeader: UInt8 = 59, destinationOptions: UInt8 = 60
    }

    /// The Jumbo Payload option's type (RFC 2675 §2), in a hop-by-hop header.
    public static let jumboPayloadOption: UInt8 = 0xC2

    /// Walks the chain starting with header type `first` at `start` (40 for a packet).
    ///
    /// - A hop-by-hop header anywhere but first is malformed (RFC 8200 §4.3: it follows the
    ///   IPv6 header immediately), and so is one holding a Jumbo Payload option (RFC 2675: the
    ///   proxy handles no jumbograms, `.jumbogram`) or an option running past its end.
    /// - A fragment header stops the walk unless it is a first fragment (offset 0) and
    ///   `throughFirstFragment` (ICMP quotes: the quoted first fragment holds the TCP header).
    /// - A header that runs past `end` throws `pastEnd` (`.badExtensionHeader` inside a packet
    ///   whose length is declared; `.truncated` inside a quote that was cut short).
    /// - The walk stops at anything else (TCP, ICMPv6, AH, ESP, unknown): that is the upper
    ///   layer. Still in the chain after the bound: a fragment header is reported as a fragment,
    ///   another extension header is malformed.
    public static func walk(_ bytes: UnsafeRawBufferPointer, first: UInt8, start: Int, end: Int,
                            pastEnd: WireError = .badExtensionHeader,
                            throughFirstFragment: Bool = false) throws(WireError) -> IPv6HeaderChain {
        precondition(0 <= start && start <= end && end <= bytes.count, "IPv6HeaderChain.walk: bounds")
        var chain = IPv6HeaderChain(upperProtocol: first, upperOffset: start, extensionHeaders: 0,
                                    fragment: nil, routingSegmentsLeft: 0)
        var next = first
        var offset = start
        while chain.extensionHeaders < maximumExtensionHeaders {
            switch next {
            case Next.hopByHop, Next.routing, Next.destinationOptions:
                guard offset + 8 <= end else { throw pastEnd }
                let length = (Int(bytes[offset + 1]) + 1) * 8
                guard offset + length <= end else { throw pastEnd }
                if next == Next.hopByHop {
                    guard offset == start, start == IPv6Packet.headerLength else { throw .badExtensionHeader }
                    try checkHopByHopOptions(bytes, from: offset + 2, to: offset + length)
                }
                if next == Next.routing { chain.routingSegmentsLeft = bytes[offset + 3] }
                next = bytes[offset]
                offset += length
            case Next.fragment:
                guard offset + 8 <= end else { throw pastEnd }
                let word = UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3])
                let f = IPv6Fragment(offset: Int(word & 0xFFF8), moreFragments: word & 1 != 0,
                                     identification: UInt32(bytes[offset + 4]) << 24 | UInt32(bytes[offset + 5]) << 16
                                         | UInt32(bytes[offset + 6]) << 8 | UInt32(bytes[offset + 7]),
                                     headerOffset: offset)
                chain.fragment = f
                chain.extensionHeaders += 1
                guard throughFirstFragment, f.offset == 0 else {
                    chain.upperProtocol = bytes[offset]
                    chain.upperOffset = offset + 8
                    return chain
                }
                next = bytes[offset]
                offset += 8
                continue
            default:
                chain.upperProtocol = next
                chain.upperOffset = offset
                return chain
            }
            chain.extensionHeaders += 1
        }
        switch next {
        case Next.fragment: throw .fragment
        case Next.hopByHop, Next.routing, Next.destinationOptions: throw .badExtensionHeader
        default:
            chain.upperProtocol = next
            chain.upperOffset = offset
            return chain
        }
    }

    /// Walks the type-length-value options of a hop-by-hop header (RFC 8200 §4.2) in
    /// `bytes[from..<to]`: each inside the header, none a Jumbo Payload (RFC 2675).
    static func checkHopByHopOptions(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) throws(WireError) {
        var o = from
        while o < to {
            let type = bytes[o]
            if type == 0 { o += 1; continue } // Pad1
            guard o + 2 <= to else { throw .badExtensionHeader }
            let next = o + 2 + Int(bytes[o + 1])
            guard next <= to else { throw .badExtensionHeader }
            if type == jumboPayloadOption { throw .jumbogram }
            o = next
        }
    }
}

/// A fragment header's fields (RFC 8200 §4.5).
public struct IPv6Fragment: Sendable, Equatable {
    /// The fragment's offset in the original packet's fragmentable part, in bytes.
    public var offset: Int
    /// The M flag: more fragments follow.
    public var moreFragments: Bool
    public var identification: UInt32
    /// Where the fragment header starts in the packet.
    public var headerOffset: Int

    @inlinable public init(offset: Int, moreFragments: Bool, identification: UInt32, headerOffset: Int) {
        self.offset = offset; self.moreFragments = moreFragments
        self.identification = identification; self.headerOffset = headerOffset
    }
}
