import PacketIO
import Wire
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct MemoryDeviceTests {
    @Test func readsQueuedPacketsInOrderAcrossBatches() throws {
        let device = MemoryDevice(isFinite: true)
        for i in 0..<5 { device.enqueue([UInt8(i)], at: Instant(nanoseconds: UInt64(i))) }
        let batch = PacketBatch(capacity: 2, maxPacket: 64)
        #expect(device.pending.count == 5)
        _ = try device.read(into: batch)
        #expect(device.pending.map(\.bytes) == [[2], [3], [4]])
        var seen: [UInt8] = (0..<batch.count).flatMap { batch.bytes($0) }
        while !device.isExhausted {
            batch.removeAll()
            _ = try device.read(into: batch)
            for i in 0..<batch.count {
                seen += batch.bytes(i)
                #expect(batch.timestamps[i] == Instant(nanoseconds: UInt64(batch.bytes(i)[0])))
            }
        }
        #expect(seen == [0, 1, 2, 3, 4])
        #expect(try device.read(into: batch) == 0)
    }

    @Test func oversizedPacketsAreDroppedNotStuck() throws {
        let device = MemoryDevice()
        device.enqueue([UInt8](repeating: 1, count: 100))
        device.enqueue([2])
        let batch = PacketBatch(capacity: 4, maxPacket: 10)
        #expect(try device.read(into: batch) == 1)
        #expect(batch.bytes(0) == [2])
        #expect(device.oversizedDrops == 1)
    }

    @Test func writeRecordsSkipsDroppedAndCountsRefusals() throws {
        let device = MemoryDevice()
        device.refuse = { $0.first == 0xEE ? EMSGSIZE : nil }
        let batch = PacketBatch(capacity: 4, maxPacket: 16)
        batch.append([1], direction: .outbound)
        batch.append([0xEE])
        batch.append([3])
        batch.append([4])
        batch.markDropped(2)
        #expect(try device.write(batch, 0..<4) == 4)
        #expect(device.written.map(\.bytes) == [[1], [4]])
        #expect(device.written[0].direction == .outbound)
        #expect(device.writeErrors[EMSGSIZE] == 1)
        #expect(device.writeErrors.total == 1)
        #expect(device.writeErrors.description == "EMSGSIZE=1")
    }

    @Test func writeBudgetEmulatesWouldBlock() throws {
        let device = MemoryDevice()
        device.writeBudget = 2
        let batch = PacketBatch(capacity: 4, maxPacket: 16)
        for i in 0..<4 { batch.append([UInt8(i)]) }
        #expect(try device.write(batch, 1..<4) == 2)
        #expect(device.written.map(\.bytes) == [[1], [2]])
        device.writeBudget = nil
        #expect(try device.write(batch, 3..<4) == 1)
    }
}
