import ControlPlane
import Engine
import Forwarding
import Foundation
import Namespace
import PacketIO
import Wire

/// `POST /v1/migrations`: what `tsmp migrate` sends (TSMP's MFR, from the local operator).
public struct MigrationRequestBody: Codable, Sendable {
    public var flows: [FlowID]
    /// IPv4 or IPv6 (its text form).
    public var toAddress: IPAddress
    public var fromPort: UInt16?
    public var deadlineSeconds: Double
    public init(flows: [FlowID], toAddress: IPAddress, fromPort: UInt16?, deadlineSeconds: Double) {
        self.flows = flows; self.toAddress = toAddress; self.fromPort = fromPort; self.deadlineSeconds = deadlineSeconds
    }
}

/// The device API's name for it (openapi/proxy-devices.yaml, the MFR's answer).
public typealias MigrationFromResult = MigrationStartResult

/// The answer to an MFR (`POST /v1/mfr`, TSMP draft §4.2.1): the device the flows go to and
/// one result per flow.
public struct MigrationFromAnswer: Codable, Sendable {
    public var target: DeviceID
    public var results: [MigrationStartResult]
    /// For an MFR of media sessions: one result per session.
    public var media: [MediaStartResult]?
    public init(target: DeviceID, results: [MigrationStartResult], media: [MediaStartResult]? = nil) {
        self.target = target; self.results = results; self.media = media
    }
}

/// `GET /v1/migrations?id=N[,N...]`: the reports.
public struct MigrationReports: Codable, Sendable {
    public var migrations: [MigrationReport]
}

/// Checks that an address is reachable through one of the device interfaces, from the
/// kernel's main routing table (/proc/net/route of the proxy's network namespace; for IPv6,
/// /proc/net/ipv6_route).
public struct DeviceReachability: Sendable {
    public let deviceInterfaces: [String]
    /// The table in /proc/net/route's format; nil reads the kernel's at each check.
    public let routeTable: String?
    /// The IPv6 table in /proc/net/ipv6_route's format; nil reads the kernel's.
    public let routeTable6: String?
    public init(deviceInterfaces: [String], routeTable: String? = nil, routeTable6: String? = nil) {
        self.deviceInterfaces = deviceInterfaces
        self.routeTable = routeTable
        self.routeTable6 = routeTable6
    }

    /// nil when reachable; otherwise the reason.
    public func problem(reaching address: IPAddress) -> String? {
        switch address {
        case .v4(let a): problem(reaching: a)
        case .v6(let a): problem(reaching: a)
        }
    }

    /// The IPv6 check: the longest matching prefix of /proc/net/ipv6_route ("DEST PLEN SRC
    /// SPLEN NEXTHOP METRIC REFCNT USE FLAGS DEV", addresses as 32 hex digits), not through
    /// `lo` (the local table's entries).
    public func problem(reaching address: IPv6Address) -> String? {
        guard let text = routeTable6 ?? (try? String(contentsOfFile: "/proc/net/ipv6_route", encoding: .utf8)) else {
            return nil // can't tell: don't refuse
        }
        var best: (prefix: Int, iface: String)?
        for line in text.split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 10, f[0].count == 32, f[9] != "lo",
                  let high = UInt64(f[0].prefix(16), radix: 16), let low = UInt64(f[0].suffix(16), radix: 16),
                  let length = Int(f[1], radix: 16), length <= 128 else { continue }
            let prefix = IPv6Address(high: high, low: low)
            func masked(_ a: IPv6Address) -> (UInt64, UInt64) {
                let h = length >= 64 ? ~UInt64(0) : (length == 0 ? 0 : ~UInt64(0) << (64 - length))
                let l = length <= 64 ? 0 : (length == 128 ? ~UInt64(0) : ~UInt64(0) << (128 - length))
                return (a.high & h, a.low & l)
            }
            guard masked(address) == masked(prefix) else { continue }
            if best == nil || length > best!.prefix { best = (length, String(f[9])) }
        }
        guard let best else { return "no route to \(address)" }
        guard deviceInterfaces.contains(best.iface) else {
            return "\(address) is reached through \(best.iface), not through a device interface (\(deviceInterfaces.joined(separator: ", ")))"
        }
        return nil
    }

    /// The IPv4 check.
    public func problem(reaching address: IPv4Address) -> String? {
        guard let text = routeTable ?? (try? String(contentsOfFile: "/proc/net/route", encoding: .utf8)) else {
            return nil // can't tell: don't refuse
        }
        var best: (prefix: Int, iface: String)?
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 8, let dst = UInt32(f[1], radix: 16), let mask = UInt32(f[7], radix: 16) else { continue }
            // /proc/net/route prints addresses in host (little-endian) byte order.
            let d = dst.byteSwapped, m = mask.byteSwapped
            guard address.value & m == d else { continue }
            let prefix = m.nonzeroBitCount
            if best == nil || prefix > best!.prefix { best = (prefix, String(f[0])) }
        }
        guard let best else { return "no route to \(address)" }
        guard deviceInterfaces.contains(best.iface) else {
            return "\(address) is reached through \(best.iface), not through a device interface (\(deviceInterfaces.joined(separator: ", ")))"
        }
        return nil
    }
}

extension ControlAPI {
    public static func migrationRoutes(engine: any EngineAccess, reachability: DeviceReachability) -> [String: HTTPEndpoint.Handler] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [
            "POST /v1/migrations": { request in
                let body: MigrationRequestBody
                do { body = try JSONDecoder().decode(MigrationRequestBody.self, from: Data(request.body)) } catch {
                    return .error(.badRequest, "malformed migration request: \(error)")
                }
                guard !body.flows.isEmpty else { return .error(.badRequest, "no flows given") }
                guard body.flows.count <= 1024 else { return .error(.badRequest, "at most 1024 flows per request") }
                guard body.deadlineSeconds > 0 && body.deadlineSeconds <= 600 else {
                    return .error(.badRequest, "deadline must be within (0, 600] seconds")
                }
                if let why = reachability.problem(reaching: body.toAddress) {
                    return .error(.unprocessableEntity, "cannot migrate to \(body.toAddress): \(why)")
                }
                let deadline = Duration.milliseconds(Int64(body.deadlineSeconds * 1000))
                let results = await engine.startMigrations(body.flows, to: MigrationTarget(address: body.toAddress, port: body.fromPort),
                                                           deadline: deadline)
                return json(encoder, results)
            },
            "GET /v1/migrations": { request in
                if request.query["id"] == nil { return await migrationListing(request, engine: engine, encoder: encoder) }
                let ids = (request.query["id"] ?? "").split(separator: ",").compactMap { UInt64($0) }.map { MigrationID($0) }
                let reports = await engine.reports(ids)
                return json(encoder, MigrationReports(migrations: reports))
            },
        ]
    }
}
