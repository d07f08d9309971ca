import Foundation
@testable import Forwarding
import Logging
import PacketIO
import Testing
import TestSupport
import Wire

/// The proxy's one capture path (`tsmp proxy --capture`): what the data plane reads is
/// recorded inbound, what it writes outbound (packets it dropped are not), and a capture that
/// fails never stops forwarding. (These were `CaptureDevice`'s, the middleware this replaced.)
@Suite("Capture recorder")
struct CaptureRecorderTests {
    static func path(_ name: String) -> String {
        NSTemporaryDirectory() + "tsmp-capture-\(UInt64.random(in: 0...UInt64.max))-\(name)"
    }

    @Test("records reads as inbound and writes as outbound, leaving out dropped packets")
    func recordsBothDirections() throws {
        let path = Self.path("capture.pcap")
        defer { try? Syscall.unlink(path) }
        let request = tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.syn], seq: 1)
        let reply = tcp4(src: "10.2.0.2:80", dst: "10.1.0.2:40000", flags: [.syn, .ack], seq: 9, ack: 2)
        let writer = try PcapFileWriter(path: path)
        let recorder = CaptureRecorder(writer: writer, logger: Logger(label: "test"))
        let batch = PacketBatch(capacity: 4)
        batch.append(request)
        recorder.record(batch, direction: .inbound)
        batch.removeAll()
        batch.append(reply)
        batch.append(request)
        batch.markDropped(1)
        recorder.record(batch, direction: .outbound)
        try writer.close()

        let reader = try PcapFileReader(path: path)
        let read = PacketBatch(capacity: 8, maxPacket: 65_535)
        _ = try reader.read(into: read)
        #expect((0..<read.count).map { read.bytes($0) } == [request, reply])
        #expect((0..<read.count).map { read.directions[$0] } == [.inbound, .outbound])
    }

    @Test("a capture that fails is closed for good; recording it again neither throws nor stops")
    func failureDoesNotStopForwarding() throws {
        let path = Self.path("closed.pcap")
        defer { try? Syscall.unlink(path) }
        let writer = try PcapFileWriter(path: path, bufferBytes: 64)
        try writer.close()
        let recorder = CaptureRecorder(writer: writer, logger: Logger(label: "test"))
        let batch = PacketBatch(capacity: 1)
        batch.append(tcp4(src: "10.1.0.2:40000", dst: "10.2.0.2:80", flags: [.syn], seq: 1))
        recorder.record(batch, direction: .outbound)
        recorder.record(batch, direction: .inbound)
        #expect(batch.count == 1 && !batch.dropped[0], "the batch is untouched")
    }
}
