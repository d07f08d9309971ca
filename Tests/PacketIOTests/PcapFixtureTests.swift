import PacketIO
import Testing
import TestSupport

/// Files written by real tools, kept in Fixtures/.
@Suite struct PcapFixtureTests {
    /// The fixtures folder next to this file (no Foundation needed for `Bundle.module`).
    static func fixture(_ name: String) -> String {
        let here = "\(#filePath)"
        let folder = here[..<(here.lastIndex(of: "/") ?? here.startIndex)]
        return "\(folder)/Fixtures/\(name)"
    }

    /// `tcpdump -i any` (LINUX_SLL2) while PrivilegedDeviceTests sent three SYNs to
    /// 127.0.0.1:9 through RawSocketDevice, each answered by a RST.
    @Test func tcpdumpAnyCaptureOfLoopbackSYNsAndRSTs() throws {
        let reader = try PcapFileReader(path: Self.fixture("loopback-syn-rst-sll2.pcap"))
        #expect(reader.linkType == .linuxSLL2)
        let packets = try readAll(reader)
        let syn = tcp4(src: "127.0.0.1:40000", dst: "127.0.0.1:9", flags: [.syn], seq: 1)
        #expect(packets.count == 6)
        #expect(packets.enumerated().allSatisfy { $0.offset % 2 == 1 || $0.element.bytes == syn })
        #expect(packets.allSatisfy { $0.bytes.count == 40 && $0.direction == .inbound })
        #expect(packets[0].time.nanoseconds == 1_795_303_061_672_478_000)
        #expect(zip(packets, packets.dropFirst()).allSatisfy { $0.time <= $1.time })
        #expect(reader.skipped.total == 0 && reader.truncatedRecords == 0 && reader.stopReason == nil)
    }
}
