@testable import Engine
import PacketIO
import Testing
import TestSupport
import Wire

/// State probes (`SpliceEngine+StateProbes`): an idle flow back from the kernel path is asked
/// for its state with ACKs each end must answer, shaped to pass strict RFC 7323 stacks and
/// stateful firewalls (issue "Real-network TCP", item 9).
@Suite("Kernel path: state probes of an idle flow")
struct KernelPathProbeTests {
    typealias H = MigrationHarness

    /// Handed over after 8 segments, then 42 more forwarded by the kernel (and acknowledged),
    /// its counters read as the flow is taken back; a migration asked for, nothing since.
    func takenBackIdle(sourceLocation: SourceLocation = #_sourceLocation) throws -> (H, MigrationID) {
        let h = try KernelPathTests().handedOver(sourceLocation: sourceLocation)
        let header: UInt64 = 52 // IPv4 + TCP + the timestamp option
        let counters = KernelPathCounters(id: h.flowID, packetsToServer: 42, bytesToServer: 42 * header,
                                          packetsToDevice: 42, bytesToDevice: 42 * (header + 1448))
        h.engine.kernelPathLeft([h.flowID], lastCounters: [counters], now: h.now)
        let mid = try #require(try? h.startMigration().0.get(), sourceLocation: sourceLocation)
        return (h, mid)
    }

    @Test("first round: one ACK per end, past its RCV.NXT (guessed from the kernel's counters) by a quarter of its window, its ack just behind its SND.NXT, with a TSval that fails PAWS")
    func guessedProbes() throws {
        let (h, mid) = try takenBackIdle()
        h.advance(milliseconds: 10)
        #expect(try h.timers().isEmpty, "probes only after a quiet spell")
        h.advance(milliseconds: 15)
        let probes = try h.timers()
        #expect(probes.count == 2 && h.engine.counters.stateProbes == 2, "\(probes)")
        let flow = try #require(h.internalFlow)
        let laptopWindow = UInt32(flow.toServer.lastWindow) << UInt32(flow.deviceWindowShift)
        let serverWindow = UInt32(flow.toDevice.lastWindow) << UInt32(flow.serverWindowShift)
        let toLaptop = try #require(probes.first { $0.destination == MigrationLab.laptop })
        let toServer = try #require(probes.first { $0.destination == MigrationLab.server })
        for (probe, source) in [(toLaptop, MigrationLab.server), (toServer, MigrationLab.nat)] {
            #expect(probe.source == source && probe.flags == .ack && probe.payload.isEmpty && probe.checksumsValid)
        }
        // The laptop has received 50 segments: RCV.NXT = s(50 * 1448). Inside its window (what
        // a firewall tracking it accepts), not before RCV.NXT (an old pure ACK failing PAWS is
        // dropped unanswered by Linux 6.15+).
        let pastLaptop = toLaptop.seq - SeqNumber(h.s(50 * 1448))
        #expect(pastLaptop > 0 && UInt32(pastLaptop) < laptopWindow, "\(pastLaptop) of \(laptopWindow)")
        let pastServer = toServer.seq - SeqNumber(h.l(120))
        #expect(pastServer > 0 && UInt32(pastServer) < serverWindow, "\(pastServer) of \(serverWindow)")
        // Acks at or before what each end sent, by less than 66,000 (conntrack's smallest slack).
        let laptopAckBehind = SeqNumber(h.l(120)) - toLaptop.ack
        let serverAckBehind = SeqNumber(h.s(50 * 1448)) - toServer.ack
        #expect((0..<66_000).contains(laptopAckBehind) && (0..<66_000).contains(serverAckBehind))
        // TSval older than the one the receiver holds as TS.Recent (the sender's last) by more
        // than Linux's PAWS window of 1 and less than 2^31: PAWS fails (RFC 7323 §5.3).
        let serverTS = flow.toDevice.lastSeenTSval
        let laptopTS = flow.toServer.lastSeenTSval
        let toLaptopAge = Int32(bitPattern: serverTS &- (toLaptop.timestamp?.value ?? serverTS))
        let toServerAge = Int32(bitPattern: laptopTS &- (toServer.timestamp?.value ?? laptopTS))
        #expect(toLaptopAge > 1 && toServerAge > 1, "TS \(String(describing: toLaptop.timestamp)) vs \(serverTS)")
        #expect(toLaptop.timestamp?.echoReply == laptopTS && toServer.timestamp?.echoReply == serverTS)
        // The answers (ACKs carrying SND.NXT and RCV.NXT) start the migration, cut at the
        // 50 segments the laptop received.
        #expect(h.send(h.fromLaptop(at: 120, ack: 50 * 1448)).verdict == .forward)
        #expect(h.send(h.fromServer(at: 50 * 1448, ack: 120)).verdict == .forward)
        _ = try h.timers()
        _ = try h.timers()
        #expect(h.report(mid)?.cutOffsetToDevice == UInt64(50 * 1448))
    }

    @Test("without timestamps: one ACK per end, before its RCV.NXT by a quarter of its window (unacceptable to it), no option")
    func guessedProbesWithoutTimestamps() throws {
        let h = try KernelPathTests().handedOver(laptop: .plain, server: .plain)
        let counters = KernelPathCounters(id: h.flowID, packetsToServer: 42, bytesToServer: 42 * 40,
                                          packetsToDevice: 42, bytesToDevice: 42 * (40 + 1448))
        h.engine.kernelPathLeft([h.flowID], lastCounters: [counters], now: h.now)
        _ = try #require(try? h.startMigration().0.get())
        h.advance(milliseconds: 25)
        let probes = try h.timers()
        #expect(probes.count == 2 && probes.allSatisfy { $0.timestamp == nil && $0.flags == .ack })
        let flow = try #require(h.internalFlow)
        let toLaptop = try #require(probes.first { $0.destination == MigrationLab.laptop })
        let toServer = try #require(probes.first { $0.destination == MigrationLab.server })
        let behindLaptop = SeqNumber(h.s(50 * 1448)) - toLaptop.seq
        let behindServer = SeqNumber(h.l(120)) - toServer.seq
        #expect(behindLaptop > 0 && UInt32(behindLaptop) <= UInt32(flow.toServer.lastWindow), "\(behindLaptop)")
        #expect(behindServer > 0 && UInt32(behindServer) <= UInt32(flow.toDevice.lastWindow), "\(behindServer)")
    }

    @Test("unanswered: the next round is two ACKs per end 2^31 apart without timestamps, then guesses again")
    func roundsAlternate() throws {
        let (h, _) = try takenBackIdle()
        h.advance(milliseconds: 25)
        #expect(try h.timers().count == 2)
        h.advance(milliseconds: 100)
        #expect(try h.timers().isEmpty, "not again before the probe interval")
        h.advance(milliseconds: 150)
        let pairs = try h.timers()
        let toLaptop = pairs.filter { $0.destination == MigrationLab.laptop }
        let toServer = pairs.filter { $0.destination == MigrationLab.server }
        #expect(toLaptop.count == 2 && toServer.count == 2)
        #expect(pairs.allSatisfy { $0.timestamp == nil && $0.flags == .ack && $0.checksumsValid })
        #expect(toLaptop[1].seq.rawValue &- toLaptop[0].seq.rawValue == UInt32(1) << 31)
        #expect(toServer[1].seq.rawValue &- toServer[0].seq.rawValue == UInt32(1) << 31)
        h.advance(milliseconds: 250)
        #expect(try h.timers().count == 2, "guesses again")
        #expect(h.engine.counters.stateProbes == 8)
    }

    @Test("the guess from the kernel's counters: payload is bytes less 52-byte headers; never below what was seen")
    func estimate() throws {
        var flow = try #require(try KernelPathTests().handedOver().internalFlow)
        flow.toServer.forgetSequenceState()
        flow.toDevice.forgetSequenceState()
        let before = (flow.toServer.lastSeenNextSeq, flow.toDevice.lastSeenNextSeq)
        // Headers larger than the bytes counted (impossible, but from the kernel): no payload.
        flow.estimateKernelForwarded(KernelPathCounters(id: flow.id, packetsToServer: 10, bytesToServer: 100,
                                                        packetsToDevice: 3, bytesToDevice: 3 * 52 + 5000))
        #expect(flow.toServer.lastSeenNextSeq == before.0)
        #expect(flow.toDevice.lastSeenNextSeq == before.1 + 5000)
        // Known values are not guesses: they stay.
        flow.toDevice.nextSeq = SeqNumber(42)
        flow.estimateKernelForwarded(KernelPathCounters(id: flow.id, packetsToServer: 0, bytesToServer: 0,
                                                        packetsToDevice: 1, bytesToDevice: 1000))
        #expect(flow.toDevice.nextSeq == SeqNumber(42))
    }
}
