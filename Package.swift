// swift-tools-version:6.1
// tsmp: live TCP migration between a user's devices, spliced in user space on a Linux gateway.
// Layout (DESIGN.md §4): dependencies point one way,
// CShims <- Wire <- PacketIO/Engine <- GatewayHost <- Forwarding <- Gateway <- tsmp
// (the engine is sans-IO: Wire and Logging only; host setup knows no engine; the data plane no HTTP);
// ControlPlane (identity, mTLS endpoint and client) <- Gateway; Media (sans-IO RTSP/RTP/GOP) depends on nothing.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

/// The packet path (views, I/O, engine, data-plane threads) is optimised in debug builds too:
/// the e2e suite judges timing (ssthresh kept, no tail-loss probe at the splice) with the debug
/// binary, and an unoptimised engine takes ~70 µs a segment, so the server's first window after
/// a splice sat 4-10 ms in the TUN queue, which CUBIC's HyStart reads as congestion (issue 13
/// item 10). Still built with -enable-testing, so `@testable import` works.
let packetPath: [SwiftSetting] = strict + [
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "tsmp",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tsmp", targets: ["tsmp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/sql-kit", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit", from: "2.17.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // System libraries found through pkg-config (Debian: libnl-3-dev, libnl-route-3-dev, libpcap-dev, libnftables-dev).
        .systemLibrary(name: "CLibnl", path: "Sources/CLibnl", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        .systemLibrary(name: "CNftables", path: "Sources/CNftables", pkgConfig: "libnftables",
                       providers: [.apt(["libnftables-dev"])]),
        .systemLibrary(name: "CLibpcap", path: "Sources/CLibpcap", pkgConfig: "libpcap",
                       providers: [.apt(["libpcap-dev"])]),
        // Only what Swift cannot import: ioctls, raw socket options, libnl and libpcap helpers.
        .target(name: "CShims", dependencies: ["CLibnl", "CLibpcap"], path: "CShims"),
        // Leaf: typed views over IPv4/IPv6/TCP bytes, options, sequence numbers, checksums; the packet
        // batch with its per-packet time, direction and virtio-net header. No I/O.
        .target(name: "Wire", swiftSettings: packetPath),
        // Batched packet devices: TUN, raw socket, pcap files, in-memory; the one syscall funnel.
        .target(name: "PacketIO", dependencies: ["CShims", "Wire"], swiftSettings: packetPath),
        // Sans-IO splice engine: flow table, NAT, seq/ack remap, expiry, in-flight copy.
        .target(name: "Engine", dependencies: ["Wire", .product(name: "Logging", package: "swift-log")],
                swiftSettings: packetPath),
        // Identity and PKI (namespace CA, CSRs, credential files), the mTLS HTTP endpoint and
        // client every control link uses, and the request guard (replay, expiry, size).
        .target(name: "ControlPlane", dependencies: [
            "Namespace", "PacketIO", "Telemetry", "Wire",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ], swiftSettings: strict),
        // Host setup: netlink, nftables and sysctls, the policy-routing plan, the state file of every
        // kernel change and `tsmp proxy cleanup`. No engine, no packets, no HTTP.
        .target(name: "GatewayHost", dependencies: [
            "CShims", "CNftables", "Wire", "PacketIO",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        // The data plane: one thread per TUN queue owning its engine shard, the registry and peers
        // that route packets between shards, the kernel-path installer, captures, offline replay,
        // and `EngineAccess`, the only way in for the endpoints. No HTTP, no metrics exposition.
        .target(name: "Forwarding", dependencies: [
            "Wire", "PacketIO", "Engine", "GatewayHost", "Media",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: packetPath),
        // The proxy service: ties host setup and data plane together (`ProxyService`), the local
        // control API, the device-facing API, migrations' history and pictures, metrics.
        .target(name: "Gateway", dependencies: [
            "GatewayHost", "Forwarding", "Media", "Wire", "PacketIO", "Engine", "ControlPlane", "Namespace", "Telemetry",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], swiftSettings: strict),
        // Namespace service (SMP draft §6): users, devices, locators, status, preferences, change log;
        // one SQL store over SQLite or PostgreSQL. No HTTP, no TLS: the gateway serves it.
        .target(name: "Namespace", dependencies: [
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SQLKit", package: "sql-kit"),
            .product(name: "SQLiteKit", package: "sqlite-kit"),
            .product(name: "PostgresKit", package: "postgres-kit"),
        ], swiftSettings: strict),
        // What the services say about themselves: log lines (text with quoted values, or JSON).
        .target(name: "Telemetry", dependencies: ["CBuildStamp", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The commit a build was stamped with at link time (scripts/lib/build-stamp), for `--version`.
        .target(name: "CBuildStamp"),
        // Sans-IO multimedia sessions (SMP draft §5): RTSP 1.0 messages and rewriting, SDP, RTP/RTCP
        // views, GOP boundaries (H.264, MPEG-4 Part 2), the switch decision and loss monitoring. No I/O.
        .target(name: "Media", dependencies: ["Wire"], swiftSettings: strict),
        // Packet builders and helpers shared by the tests.
        .target(name: "TestSupport", dependencies: ["Wire", "Engine", "PacketIO", "ControlPlane"], swiftSettings: strict),
        .executableTarget(name: "tsmp", dependencies: [
            "Gateway", "GatewayHost", "Media", "Forwarding", "ControlPlane", "Namespace", "Engine", "PacketIO", "Wire", "CShims",
            "Telemetry",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", .product(name: "Logging", package: "swift-log")],
                    swiftSettings: strict),
        .testTarget(name: "WireTests", dependencies: ["Wire", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "PacketIOTests", dependencies: ["PacketIO", "Wire", "TestSupport"],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
        // The replay tests (`Replay` lives in Forwarding: it drives devices) share the engine's harness.
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Wire", "PacketIO", "Forwarding", "TestSupport"],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "MediaTests", dependencies: ["Media", "PacketIO", "Wire"],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "NamespaceTests", dependencies: [
            "Namespace",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SQLKit", package: "sql-kit"),
        ], swiftSettings: strict),
        .testTarget(name: "ControlPlaneTests", dependencies: [
            "ControlPlane", "Namespace", "TestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .testTarget(name: "GatewayTests", dependencies: [
            "Gateway", "GatewayHost", "Forwarding", "ControlPlane", "Namespace", "Engine", "Wire", "PacketIO",
            "TestSupport",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
    ]
)
