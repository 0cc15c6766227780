public import Foundation
import Synchronization

/// Makes time-ordered UUIDs (RFC 9562 version 7): 48 bits of Unix milliseconds, then random bits.
///
/// Ids made in one process are strictly increasing, even within one millisecond, so they sort
/// in creation order in every store and log.
public enum OutboxMessageID {
    private static let last = Mutex<(milliseconds: UInt64, counter: UInt16)>((0, 0))

    /// A new version-7 UUID.
    public static func make(now: Date = Date()) -> UUID {
        let wallMilliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        // A 12-bit counter in `rand_a` keeps ids monotonic inside one millisecond (RFC 9562 §6.2, method 1).
        let (milliseconds, counter) = last.withLock { state -> (UInt64, UInt16) in
            if wallMilliseconds > state.milliseconds {
                state = (wallMilliseconds, UInt16.random(in: 0..<0x400))
            } else if state.counter < 0xFFF {
                state.counter += 1
            } else {
                state = (state.milliseconds + 1, 0)
            }
            return state
        }
        var random = SystemRandomNumberGenerator()
        let tail = random.next() as UInt64
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * UInt64(index))) }
        bytes[6] = 0x70 | UInt8(truncatingIfNeeded: counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        bytes[8] = 0x80 | UInt8(truncatingIfNeeded: tail >> 58)
        for index in 9..<16 { bytes[index] = UInt8(truncatingIfNeeded: tail >> (8 * UInt64(15 - index))) }
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}
