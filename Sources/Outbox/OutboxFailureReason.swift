/// Failure reasons as every store can keep them.
///
/// A reason comes from a publisher (a broker's error text, an exception message) and is written
/// with the acknowledgement. Stores differ in what a text column holds: PostgreSQL refuses NUL,
/// MariaDB in strict mode refuses a `TEXT` over 64 KiB, and a reason the store refuses would fail
/// the whole acknowledgement again at every try. So the relay cleans every reason once, before
/// any store sees it.
package enum OutboxFailureReason {
    /// Longest reason kept, in UTF-8 bytes: room for any broker's error text, far under every
    /// store's column limit.
    package static let maximumBytes = 2048

    /// The reason with control characters (NUL included) turned into spaces and cut, on a
    /// character boundary, to ``maximumBytes`` with a trailing "…" when cut.
    package static func clean(_ reason: String) -> String {
        let fits = reason.utf8.count <= maximumBytes
        let budget = fits ? maximumBytes : maximumBytes - ellipsis.utf8.count
        var result = ""
        var bytes = 0
        for character in reason {
            let isControl = character.unicodeScalars.contains { $0.properties.generalCategory == .control }
            let cleaned: Character = isControl ? " " : character
            let size = cleaned.utf8.count
            if bytes + size > budget { return result + ellipsis }
            result.append(cleaned)
            bytes += size
        }
        return result
    }

    private static let ellipsis = "…"
}
