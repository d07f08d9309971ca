/// A FIFO lock for async code: one holder at a time, the others wait without blocking a thread.
/// The store holds it for a whole transaction, since its connection runs one transaction at a
/// time and actor reentrancy would otherwise interleave two of them across an `await`.
actor TransactionGate {
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func enter() async {
        if !held {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the gate to the longest waiter, or opens it.
    func leave() {
        if waiting.isEmpty {
            held = false
        } else {
            waiting.removeFirst().resume()
        }
    }

    /// Runs `body` holding the gate.
    func withGate<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        await enter()
        do {
            let result = try await body()
            leave()
            return result
        } catch {
            leave()
            throw error
        }
    }
}
