import Foundation
import Testing
import Wire
@testable import GatewayHost

/// One change of every kind.
let everyKindOfChange: [GatewayChange] = [
    .linkMTU(link: "tsmp0", previous: 1500, mtu: 9000),
    .linkUp(link: "tsmp0"),
    .address(NetlinkPrefix("10.99.0.1/32")!, link: "tsmp0"),
    .route(samplePlan().failClosedRoute),
    .route(samplePlan().tunRoute),
    .rule(samplePlan().interceptRules[1]), // the TCP reply rule
    .rule(NetlinkRule(priority: 10050, table: NetlinkTable.local, protocolTag: NetlinkProtocolTag.tsmp)),
    .removedRule(.kernelLocal),
    .sysctl(key: "net.ipv4.ip_forward", previous: "0", value: "1"),
]

/// A fresh directory under the system's temporary directory, removed by `cleanup`.
struct TemporaryDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/tsmp-gwtest-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

@Suite struct GatewayStateTests {
    @Test func roundTripsEveryKindOfChange() throws {
        let state = GatewayState(tunName: "tsmp0", process: GatewayProcess(pid: 42, startTime: 7),
                                 plan: samplePlan(), changes: everyKindOfChange)
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(GatewayState.self, from: data) == state)
    }

    @Test func readsLikeWhatItRecords() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(GatewayChange.removedRule(.kernelLocal)), as: UTF8.self)
        #expect(json == #"{"kind":"removed-rule","rule":{"hasOtherSelectors":false,"priority":0,"protocolTag":2,"table":255}}"#)
        let address = String(decoding: try encoder.encode(everyKindOfChange[2]), as: UTF8.self)
        #expect(address == #"{"address":"10.99.0.1\/32","kind":"address","link":"tsmp0"}"#)
    }

    /// State files written before route kinds existed hold routes without the key: they
    /// still read, as ordinary routes (what they were).
    @Test func aRouteWithoutKindIsAnOrdinaryRoute() throws {
        let data = try JSONEncoder().encode(GatewayChange.route(samplePlan().tunRoute))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let route = try #require(object["route"] as? [String: Any])
        #expect(route["kind"] == nil && route["table"] as? Int == 7464)
        #expect(try JSONDecoder().decode(GatewayChange.self, from: data) == .route(samplePlan().tunRoute))
        let blackhole = try JSONEncoder().encode(GatewayChange.route(samplePlan().failClosedRoute))
        #expect(try JSONDecoder().decode(GatewayChange.self, from: blackhole) == .route(samplePlan().failClosedRoute))
    }

    @Test func refusesUnknownKinds() {
        let json = Data(#"{"kind":"nft-table","name":"x"}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(GatewayChange.self, from: json) }
    }

    @Test func describesChangesAndTheirUndoing() {
        #expect(everyKindOfChange.map(\.description) == [
            "set link tsmp0 mtu 9000 (was 1500)",
            "set link tsmp0 up",
            "add address 10.99.0.1/32 dev tsmp0",
            "add route blackhole default table 7464 proto 0x74 metric 4294967295",
        "add route default dev tsmp0 table 7464 proto 0x74",
            "add rule pref 10000 iif veth-up to 10.2.0.100/32 ipproto tcp dport 61000-65534 lookup 7464 proto 0x74",
            "add rule pref 10050 lookup local proto 0x74",
            "delete rule pref 0 lookup local proto kernel",
            "set net.ipv4.ip_forward = 1 (was 0)",
        ])
        #expect(everyKindOfChange.map(\.undoDescription) == [
            "set link tsmp0 mtu 1500",
            "set link tsmp0 down",
            "delete address 10.99.0.1/32 dev tsmp0",
            "delete route blackhole default table 7464 proto 0x74 metric 4294967295",
        "delete route default dev tsmp0 table 7464 proto 0x74",
            "delete rule pref 10000 iif veth-up to 10.2.0.100/32 ipproto tcp dport 61000-65534 lookup 7464 proto 0x74",
            "delete rule pref 10050 lookup local proto 0x74",
            "add rule pref 0 lookup local proto kernel",
            "set net.ipv4.ip_forward = 0",
        ])
    }
}

@Suite struct GatewayStateStoreTests {
    @Test func savesLoadsListsAndRemoves() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = GatewayStateStore(directory: directory.path + "/run/tsmp")   // created on save
        #expect(try store.statePaths() == [])
        #expect(try store.load(tun: "tsmp0") == nil)

        var state = GatewayState(tunName: "tsmp0", process: .current, plan: samplePlan())
        try store.save(state)
        state.changes = everyKindOfChange
        try store.save(state)   // replaces the file
        #expect(try store.load(tun: "tsmp0") == state)
        #expect(try store.statePaths() == [store.path(forTun: "tsmp0")])
        // Atomic replacement leaves no temporary files behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory) == ["tsmp0.json"])

        try store.remove(tun: "tsmp0")
        try store.remove(tun: "tsmp0")   // already gone is fine
        #expect(try store.statePaths() == [])
    }

    @Test func namesTheFileWhenItIsNotAStateFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = GatewayStateStore(directory: directory.path)
        try Data("{\"version\": 1".utf8).write(to: URL(fileURLWithPath: store.path(forTun: "tsmp0")))
        #expect {
            try store.load(path: store.path(forTun: "tsmp0"))
        } throws: { error in
            "\(error)".hasPrefix("state file \(store.path(forTun: "tsmp0")): not a tsmp state file")
        }
    }

    @Test func refusesNewerVersions() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = GatewayStateStore(directory: directory.path)
        var state = GatewayState(tunName: "tsmp0", process: .current, plan: nil)
        state.version = GatewayState.currentVersion + 1
        try store.save(state)
        #expect { try store.load(tun: "tsmp0") } throws: { "\($0)".contains("newer tsmp") }
    }
}

@Suite struct GatewayProcessTests {
    @Test func thisProcessRuns() {
        let me = GatewayProcess.current
        #expect(me.startTime != nil)
        #expect(me.isRunning)
        #expect(me.isCurrent)
    }

    @Test func aRecycledPidIsNotTheRecordedProcess() throws {
        let me = GatewayProcess.current
        let impostor = GatewayProcess(pid: me.pid, startTime: try #require(me.startTime) + 1)
        #expect(!impostor.isRunning)
    }

    @Test func missingProcessesDoNotRun() {
        #expect(!GatewayProcess(pid: 0, startTime: nil).isRunning)
        #expect(!GatewayProcess(pid: Int32.max, startTime: nil).isRunning)
    }
}

@Suite struct SysctlTests {
    @Test func keysMapToProcPaths() {
        let sysctl = Sysctl()
        #expect(sysctl.path(for: "net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward")
        let vlan = Sysctl.key("net.ipv4.conf", interface: "eth0.100", "rp_filter")
        #expect(vlan == "net.ipv4.conf.eth0/100.rp_filter")
        #expect(sysctl.path(for: vlan) == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
    }

    @Test func readsAndWritesUnderItsRoot() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        try FileManager.default.createDirectory(atPath: directory.path + "/net/ipv4", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory.path + "/net/ipv4/ip_forward", contents: Data("0\n".utf8))
        let sysctl = Sysctl(root: directory.path)
        #expect(try sysctl.read("net.ipv4.ip_forward") == "0")
        try sysctl.write("net.ipv4.ip_forward", "1")
        #expect(try sysctl.read("net.ipv4.ip_forward") == "1")
        #expect { try sysctl.read("net.ipv4.nope") } throws: { "\($0)".hasPrefix("read sysctl net.ipv4.nope: No such file") }
    }
}
