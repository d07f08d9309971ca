import NIOCore
import Synchronization

/// Decides which of many similar log lines to write: at most one per key (a source address)
/// per interval, the next one carrying how many were left out (issue 10, finding 5: one
/// client made 695 "TLS handshake refused" lines in 10 s). Remembers at most `maxKeys` keys;
/// past that, all other keys share one ("other").
final class RateLimitedLog: Sendable {
    private struct Slot { var lastLogged: NIODeadline; var suppressed: Int }
    private let interval: TimeAmount
    private let maxKeys: Int
    private let slots = Mutex<[String: Slot]>([:])

    init(interval: TimeAmount = .seconds(10), maxKeys: Int = 4096) {
        self.interval = interval
        self.maxKeys = maxKeys
    }

    /// nil: leave this line out (counted). Otherwise write it, with the returned number of
    /// lines left out since the last one for this key.
    func admit(_ key: String, now: NIODeadline = .now()) -> Int? {
        slots.withLock { slots -> Int? in
            var key = key
            if slots[key] == nil, slots.count >= maxKeys {
                slots = slots.filter { now - $0.value.lastLogged < interval }
                if slots.count >= maxKeys { key = "other" }
            }
            guard var slot = slots[key] else {
                slots[key] = Slot(lastLogged: now, suppressed: 0)
                return 0
            }
            if now - slot.lastLogged < interval {
                slot.suppressed += 1
                slots[key] = slot
                return nil
            }
            let suppressed = slot.suppressed
            slots[key] = Slot(lastLogged: now, suppressed: 0)
            return suppressed
        }
    }
}
