package import Foundation

/// Helpers the package's store modules share; not public API.
package enum OutboxStoreSupport {
    /// Whether `name` may be interpolated into a statement as a table, schema or collection name
    /// part: `[A-Za-z_][A-Za-z0-9_]*`, at most 40 characters. Identifiers cannot be bound as
    /// parameters, so this check is what keeps them from carrying SQL or operators.
    package static func isValidIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 40 else { return false }
        func isLetter(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) }
        return (isLetter(first) || first == "_")
            && name.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    /// A time as integer microseconds since 1970: exact, sortable, cheap to compare, and free of
    /// any server's time zone. Stores without a native time type keep times this way.
    package static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The time of `microseconds` since 1970.
    package static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: TimeInterval(microseconds) / 1_000_000)
    }
}
