import PacketIO
import Testing
import TestSupport

/// Broken files: the reader never traps; it throws a clear error at open or counts and stops.
@Suite struct PcapReaderRobustnessTests {
    let ip4 = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", payload: Array(0..<100))

    func open(_ bytes: [UInt8]) throws(PcapFileError) -> PcapFileReader {
        let path = temporaryPath("broken.pcap")
        defer { removeTemporary(path) }
        do { try writeFile(path, bytes) } catch { preconditionFailure("cannot write \(path): \(error)") }
        return try PcapFileReader(path: path)
    }

    func expectCannotOpen(_ bytes: [UInt8]) {
        do {
            _ = try open(bytes)
            Issue.record("opened \(bytes.count) bytes of junk")
        } catch {
            guard case .cannotOpen(let path, let reason) = error else { Issue.record("\(error)"); return }
            #expect(error.description.contains(path))
            #expect(!reason.isEmpty)
        }
    }

    @Test func missingFileNamesTheFile() {
        do {
            _ = try PcapFileReader(path: "/nonexistent/capture.pcap")
            Issue.record("opened a missing file")
        } catch {
            #expect(error.description.contains("/nonexistent/capture.pcap"))
        }
    }

    @Test func emptyFileIsAnError() { expectCannotOpen([]) }

    @Test func garbageIsAnError() {
        var rng = SeededGenerator(seed: 7)
        expectCannotOpen(rng.bytes(100))
        expectCannotOpen(Array("not a capture at all, just text\n".utf8))
    }

    @Test func headerOnlyFileIsEmptyAndClean() throws {
        let reader = try open(PcapBytes(linkType: 101).bytes)
        #expect(try readAll(reader).isEmpty)
        #expect(reader.isExhausted && reader.stopReason == nil)
    }

    @Test func recordCutOffAtTheEndDeliversWhatCameBeforeAndSaysWhy() throws {
        var file = PcapBytes(linkType: 101)
        file.add(ip4)
        file.add(ip4)
        let reader = try open(Array(file.bytes.dropLast(30)))
        #expect(try readAll(reader).map(\.bytes) == [ip4])
        #expect(reader.stopReason != nil)
        #expect(reader.isExhausted)
    }

    @Test func recordHeaderCutOff() throws {
        var file = PcapBytes(linkType: 101)
        file.add(ip4)
        let reader = try open(file.bytes + [1, 2, 3, 4, 5])
        #expect(try readAll(reader).count == 1)
        #expect(reader.stopReason != nil)
    }

    @Test func capturedShorterThanOnTheWireIsDeliveredAndCounted() throws {
        var file = PcapBytes(linkType: 101)
        file.add(Array(ip4.prefix(54)), originalLength: UInt32(ip4.count))
        let reader = try open(file.bytes)
        #expect(try readAll(reader).map(\.bytes) == [Array(ip4.prefix(54))])
        #expect(reader.truncatedRecords == 1)
    }

    @Test func absurdCaptureLengthStopsTheFile() throws {
        var file = PcapBytes(linkType: 101)
        file.add(ip4)
        file.put32(1); file.put32(0); file.put32(0xFFFF_FFF0); file.put32(0xFFFF_FFF0)
        file.bytes += ip4
        let reader = try open(file.bytes)
        #expect(try readAll(reader).map(\.bytes) == [ip4])
        #expect(reader.stopReason != nil)
    }

    @Test func emptyAndOneByteRecordsAreSkipped() throws {
        var file = PcapBytes(linkType: 1)
        file.add([])
        file.add([0x45])
        var sll = PcapBytes(linkType: 113)
        sll.add([])
        #expect(try readAll(try open(file.bytes)).isEmpty)
        #expect(try readAll(try open(sll.bytes)).isEmpty)
    }

    /// Random corruption of valid files of every link type: no trap, and whatever comes out
    /// fits its batch slot.
    @Test(arguments: [UInt32(1), 0, 101, 108, 113, 228, 229, 276])
    func corruptedFilesNeverTrap(linkType: UInt32) throws {
        var rng = SeededGenerator.fromEnvironment(defaultSeed: 0x7E57 &+ UInt64(linkType))
        for round in 0..<60 {
            var file = PcapBytes(linkType: linkType)
            for _ in 0..<5 {
                let size = Int(rng.next() % 120)
                file.add(rng.bytes(size), seconds: UInt32(truncatingIfNeeded: rng.next()),
                         fraction: UInt32(truncatingIfNeeded: rng.next()))
            }
            if round % 3 == 0 {   // flip bytes after the file header, record headers included
                for _ in 0..<8 {
                    let at = 24 + Int(rng.next() % UInt64(file.bytes.count - 24))
                    file.bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            if round % 5 == 0 { file.bytes.removeLast(Int(rng.next() % 40)) }
            let reader = try open(file.bytes)
            let packets = try readAll(reader, capacity: 3, maxPacket: 100)
            #expect(packets.allSatisfy { $0.bytes.count <= 100 }, "seed \(rng.seed) round \(round)")
            #expect(reader.recordsRead <= 5)
        }
    }
}
