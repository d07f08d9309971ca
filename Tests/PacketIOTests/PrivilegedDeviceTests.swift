import PacketIO
import Wire
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Tests that need root (CAP_NET_ADMIN for TUN, CAP_NET_RAW for raw sockets); they are
/// disabled, not failed, otherwise.
let runningAsRoot = Syscall.effectiveUserID() == 0

/// A TUN name no other test or run uses: "tsmpt" + 6 hex digits (IFNAMSIZ is 16).
func uniqueTunName() -> String {
    let suffix = String(UInt32.random(in: 0 ..< 0x100_0000), radix: 16)
    return "tsmpt" + String(repeating: "0", count: 6 - suffix.count) + suffix
}

@Suite(.enabled(if: runningAsRoot, "needs root for /dev/net/tun and raw sockets"))
struct PrivilegedDeviceTests {
    @Test func tunIsCreatedNamedAndGoneAfterClose() throws {
        let name = uniqueTunName()
        #expect(try Syscall.interfaceIndex(name) == nil)
        let tun = try TunDevice(name: name)
        #expect(tun.name == name)
        #expect(tun.fileDescriptor >= 0)
        #expect(tun.pollDescriptor == tun.fileDescriptor)
        #expect(try Syscall.interfaceIndex(name) != nil)
        #expect(try Syscall.getFlags(tun.fileDescriptor) & O_NONBLOCK != 0)

        // Down and unaddressed: nothing to read, and reading does not block.
        let batch = PacketBatch(capacity: 8)
        #expect(try tun.read(into: batch) == 0)

        try tun.close()
        #expect(tun.pollDescriptor == nil)
        #expect(try Syscall.interfaceIndex(name) == nil)
    }

    @Test func kernelPicksTheNumberInAPattern() throws {
        let tun = try TunDevice(name: "tsmpt%d")
        defer { try? tun.close() }
        #expect(tun.name.hasPrefix("tsmpt"))
        #expect(tun.name != "tsmpt%d")
        #expect(try Syscall.interfaceIndex(tun.name) != nil)
    }

    @Test func nameTooLongIsEINVAL() {
        #expect(throws: SystemError("TUNSETIFF tsmp-name-much-too-long", errno: EINVAL)) {
            _ = try TunDevice(name: "tsmp-name-much-too-long")
        }
    }

    @Test func multiQueueTunTakesSeveralDescriptors() throws {
        let name = uniqueTunName()
        let options = TunDevice.Options(multiQueue: true)
        let first = try TunDevice(name: name, options: options)
        let second = try TunDevice(name: name, options: options)
        #expect(first.fileDescriptor != second.fileDescriptor)
        try first.close()
        #expect(try Syscall.interfaceIndex(name) != nil)
        try second.close()
        #expect(try Syscall.interfaceIndex(name) == nil)
    }

    @Test func virtioHeaderTunAcceptsOffloads() throws {
        let tun = try TunDevice(name: uniqueTunName(), options: .init(virtioNetHeader: true))
        defer { try? tun.close() }
        try tun.setOffload([.checksum, .tcp4Segmentation, .tcp6Segmentation])
    }

    /// GRO is the TUN device's own business (STYLE.md): with the virtio-net header its write
    /// merges a flow's in-order segments and counts them; without it, nothing is merged.
    @Test func virtioHeaderTunCoalescesOnWrite() throws {
        func segments() -> PacketBatch {
            let batch = PacketBatch(capacity: 4)
            for k in 0..<4 {
                batch.append(tcp4(src: "10.2.0.2:5201", dst: "10.1.0.2:40000", flags: .ack, seq: 1000 &+ UInt32(k * 1000),
                                  ack: 1, payload: [UInt8](repeating: UInt8(k), count: 1000)))
            }
            return batch
        }
        let tun = try TunDevice(name: uniqueTunName(), options: .init(virtioNetHeader: true))
        defer { try? tun.close() }
        let batch = segments()
        _ = try tun.write(batch, 0..<batch.count) // the TUN is down: refused and counted, after the merge
        #expect(tun.segmentsCoalesced == 3)
        #expect((0..<batch.count).filter { batch.dropped[$0] }.count == 3)
        #expect(batch.offloads[0].segmentSize == 1000)

        let plain = try TunDevice(name: uniqueTunName())
        defer { try? plain.close() }
        let unmerged = segments()
        _ = try plain.write(unmerged, 0..<unmerged.count)
        #expect(plain.segmentsCoalesced == 0)
        #expect((0..<unmerged.count).allSatisfy { !unmerged.dropped[$0] })
    }

    @Test func offloadsNeedTheVirtioHeader() throws {
        let tun = try TunDevice(name: uniqueTunName())
        defer { try? tun.close() }
        #expect(throws: SystemError.self) { try tun.setOffload([.checksum, .tcp4Segmentation]) }
    }

    @Test func rawSocketOpensWithALargeSendBuffer() throws {
        let device = try RawSocketDevice(enableIPv6: true)
        defer { try? device.close() }
        #expect(device.ipv4Descriptor >= 0)
        #expect(device.ipv6Descriptor != nil)
        #expect(device.pollDescriptor == nil)
        let sendBuffer = try Syscall.getSocketOption(device.ipv4Descriptor, level: SOL_SOCKET,
                                                     name: SO_SNDBUF, initial: Int32(0))
        #expect(sendBuffer >= 4 << 20)   // the kernel reports twice what was set
        #expect(try Syscall.getFlags(device.ipv4Descriptor) & O_NONBLOCK != 0)
        #expect(try device.read(into: PacketBatch(capacity: 1)) == 0)
    }

    @Test func rawSocketSendsToLoopbackAndCountsMalformedPackets() throws {
        let device = try RawSocketDevice(enableIPv6: false, batchLimit: 2)
        defer { try? device.close() }
        // A SYN to a port nobody listens on: the loopback stack answers with a RST, harmlessly.
        let syn = tcp4(src: "127.0.0.1:40000", dst: "127.0.0.1:9", flags: [.syn], seq: 1)
        let batch = PacketBatch(capacity: 8)
        batch.append(syn)
        batch.append([0x45, 0, 0])          // too short for an IPv4 header
        batch.append(syn)
        batch.append(ipv6Packet())          // IPv6 disabled
        batch.append(syn)
        batch.append(syn)
        batch.markDropped(5)
        #expect(try device.write(batch, 0..<6) == 6)
        #expect(device.writeErrors[EINVAL] == 1)
        #expect(device.writeErrors[EAFNOSUPPORT] == 1)
        // On a host whose loopback is down the sends are refused, and counted, instead.
        #expect(device.packetsSent + device.writeErrors.total == 5)
    }

    @Test func brokenRawSocketThrows() throws {
        let device = try RawSocketDevice()
        try device.close()
        let batch = PacketBatch(capacity: 1)
        batch.append(tcp4(src: "127.0.0.1:1", dst: "127.0.0.1:9", flags: [.syn]))
        #expect(throws: SystemError.self) { _ = try device.write(batch, 0..<1) }
    }
}
