@testable import Wire
import Testing

@Suite struct PacketBatchTests {
    @Test func appendUntilFullThenRefuse() {
        let batch = PacketBatch(capacity: 2, maxPacket: 100)
        #expect(batch.append([1, 2, 3]))
        #expect(batch.append([4], at: Instant(nanoseconds: 7), direction: .outbound))
        #expect(batch.isFull)
        #expect(!batch.append([5]))
        #expect(batch.count == 2)
        #expect(batch.bytes(0) == [1, 2, 3])
        #expect(batch.bytes(1) == [4])
        #expect(batch.timestamps[1] == Instant(nanoseconds: 7))
        #expect(batch.directions[1] == .outbound)
    }

    @Test func packetLargerThanSlotIsRefusedWithoutCopy() {
        let batch = PacketBatch(capacity: 2, maxPacket: 4)
        #expect(!batch.append([1, 2, 3, 4, 5]))
        #expect(batch.count == 0)
        #expect(batch.append([1, 2, 3, 4]))
    }

    @Test func removeAllKeepsStorageAndResetsMetadata() {
        let batch = PacketBatch(capacity: 1, maxPacket: 16)
        batch.append([9, 9], direction: .outbound)
        batch.markDropped(0)
        let base = batch.packet(0).baseAddress
        batch.removeAll()
        #expect(batch.count == 0)
        batch.append([1])
        #expect(batch.packet(0).baseAddress == base)
        #expect(batch.directions[0] == .inbound)
        #expect(!batch.dropped[0])
    }

    @Test func slotBufferThenCommit() {
        let batch = PacketBatch(capacity: 3, maxPacket: 8, headroom: 4)
        let slot = batch.slotBuffer(0)
        #expect(slot.count == 8)
        slot.copyBytes(from: [0xAA, 0xBB])
        batch.commitNext(length: 2)
        #expect(batch.bytes(0) == [0xAA, 0xBB])
        batch.setLength(0, 1)
        #expect(batch.bytes(0) == [0xAA])
    }

    @Test func slotsDoNotOverlapAndHeadroomPrecedesEachPacket() {
        let batch = PacketBatch(capacity: 3, maxPacket: 8, headroom: 12)
        for i in 0..<3 { batch.append([UInt8](repeating: UInt8(i + 1), count: 8)) }
        for i in 0..<3 { #expect(batch.bytes(i) == [UInt8](repeating: UInt8(i + 1), count: 8)) }
        // The module-internal prefix views reach into the headroom, not the previous slot.
        let withHeader = batch.packet(1, prefix: 10)
        #expect(withHeader.count == 18)
        withHeader.copyBytes(from: [UInt8](repeating: 0xEE, count: 10))
        #expect(batch.bytes(0) == [UInt8](repeating: 1, count: 8))
        #expect(batch.bytes(1) == [UInt8](repeating: 2, count: 8))
        #expect(batch.slotBuffer(2, prefix: 12).count == 20)
    }

    @Test func instantDescription() {
        #expect(Instant(nanoseconds: 12_000_345_999).description == "12.000345s")
        #expect(Instant(nanoseconds: 0).description == "0.000000s")
        #expect(Instant.seconds(1.5) == Instant(nanoseconds: 1_500_000_000))
    }
}
