import ControlPlane
import Foundation
import Logging
import Synchronization
import Testing

/// The request guard's journal: ids accepted before a restart are refused after it (issue 10,
/// finding 5), expired ones are forgotten, the files stay small and private.
@Suite("Replay journal")
struct ReplayJournalTests {
    final class Clock: Sendable {
        let now = Mutex<Int64>(1_700_000_000_000)
        func advance(_ ms: Int64) { now.withLock { $0 += ms } }
        var value: Int64 { now.withLock { $0 } }
    }

    let clock = Clock()
    let bob = try! PeerIdentity.device("phone.bob@example.com")
    let directory = try! TempDirectory()
    var path: String { directory.file("replay.journal") }

    func makeGuard() throws -> RequestGuard {
        let clock = self.clock
        return try RequestGuard(journalPath: path, logger: Logger(label: "test"), clock: { clock.value })
    }

    func fileText(_ name: String) -> String {
        (try? String(contentsOfFile: directory.file(name), encoding: .utf8)) ?? ""
    }

    @Test("a request accepted before a restart is a replay (409) after it; the files are 0600")
    func replayAfterRestart() throws {
        let id = RequestGuard.newRequestID()
        let sent = clock.value
        let before = try makeGuard()
        #expect(before.check(peer: bob, requestID: id, requestTime: "\(sent)") == nil)
        #expect(try directory.mode("replay.journal") == 0o600)
        clock.advance(5_000)
        let after = try makeGuard()  // the restarted service, same journal
        let replay = after.check(peer: bob, requestID: id, requestTime: "\(sent)")
        #expect(replay?.status == .conflict && replay?.reason.contains("replayed request") == true)
        #expect(after.remembered == 1)
        // Another peer with the same id, or another id, is fine.
        #expect(after.check(peer: try .device("laptop.alice@example.com"), requestID: id, requestTime: "\(clock.value)") == nil)
        #expect(after.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil)
        #expect(try directory.mode("replay.journal") == 0o600)
    }

    @Test("ids past window + skew are forgotten on load, and the journal is compacted")
    func expiredForgotten() throws {
        let old = try makeGuard()
        for _ in 0..<5 { #expect(old.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil) }
        clock.advance(20_000)
        let recent = RequestGuard.newRequestID()
        #expect(old.check(peer: bob, requestID: recent, requestTime: "\(clock.value)") == nil)
        clock.advance(20_001)  // the first five are 40.001 s old, the last 20.001 s
        let reloaded = try makeGuard()
        #expect(reloaded.remembered == 1)
        #expect(fileText("replay.journal").split(separator: "\n").count == 1)
        #expect(fileText("replay.journal").contains(recent))
        #expect(reloaded.check(peer: bob, requestID: recent, requestTime: "\(clock.value - 20_001)")?.status == .conflict)
        clock.advance(20_000)
        #expect(try makeGuard().remembered == 0)
    }

    @Test("a torn last line and garbage are skipped; the whole lines before them count")
    func tornLine() throws {
        let id = RequestGuard.newRequestID()
        #expect(try makeGuard().check(peer: bob, requestID: id, requestTime: "\(clock.value)") == nil)
        let whole = fileText("replay.journal")
        try directory.write("replay.journal", whole + "not an entry\n\(clock.value + 40_000) \(RequestGuard.newRequestID()) device:ph")
        let reloaded = try makeGuard()
        #expect(reloaded.remembered == 1)
        #expect(reloaded.check(peer: bob, requestID: id, requestTime: "\(clock.value)")?.status == .conflict)
    }

    @Test("the journal rotates: two files at most, ids in the previous one still count")
    func rotation() throws {
        let g = try makeGuard()
        let first = RequestGuard.newRequestID()
        #expect(g.check(peer: bob, requestID: first, requestTime: "\(clock.value)") == nil)
        clock.advance(40_001)  // the current file is older than the retention: the next append rotates
        let second = RequestGuard.newRequestID()
        #expect(g.check(peer: bob, requestID: second, requestTime: "\(clock.value)") == nil)
        #expect(fileText("replay.journal.previous").contains(first))
        #expect(fileText("replay.journal").contains(second) && !fileText("replay.journal").contains(first))
        #expect(try directory.mode("replay.journal") == 0o600)
        // Many rotations later, still two files, each with only its own period's ids.
        for _ in 0..<5 {
            clock.advance(40_001)
            #expect(g.check(peer: bob, requestID: RequestGuard.newRequestID(), requestTime: "\(clock.value)") == nil)
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(files == ["replay.journal", "replay.journal.previous"])
        #expect(fileText("replay.journal").split(separator: "\n").count == 1)
        #expect(fileText("replay.journal.previous").split(separator: "\n").count == 1)
    }

    @Test("an unreadable journal is a clear error naming it")
    func unreadable() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)  // a directory where the file should be
        #expect(throws: PKIError.self) { _ = try makeGuard() }
        do {
            _ = try makeGuard()
        } catch {
            #expect("\(error)".contains("replay journal \(path)"), "\(error)")
        }
    }
}
