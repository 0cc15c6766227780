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

    /// `name` when it is a valid identifier (see ``isValidIdentifier(_:)``).
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` naming `what` ("table prefix",
    ///   "schema", …) and how to fix it.
    package static func requireIdentifier(_ name: String, what: String, store: String) throws -> String {
        guard isValidIdentifier(name) else {
            throw OutboxError(code: .invalidConfiguration, operation: "configure \(store) store",
                              message: "The \(what) '\(name)' is not a valid name; use letters, digits and underscores (at most 40, not starting with a digit).")
        }
        return name
    }

    /// The partition counts `migrate` accepts.
    package static let partitionCounts = 1...4096

    /// Refuses a partition count `migrate` cannot create.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`.
    package static func checkPartitionCount(_ count: Int) throws {
        guard partitionCounts.contains(count) else {
            throw OutboxError(code: .invalidConfiguration, operation: "migrate",
                              message: "The partition count must be between \(partitionCounts.lowerBound) and \(partitionCounts.upperBound).")
        }
    }

    /// Refuses a schema at `version` when this build needs `latest`, naming both and
    /// `outbox migrate`: a relay started on an older schema would otherwise only log failed calls.
    /// A newer schema is accepted, so the schema can be migrated before the relays are upgraded.
    ///
    /// - Throws: ``OutboxError`` with code `.schemaMismatch`.
    package static func requireSchema(version: Int, latest: Int, store: String) throws {
        guard version >= latest else {
            throw OutboxError(code: .schemaMismatch, operation: "status",
                              message: "The \(store) outbox schema is at version \(version) and this build needs version \(latest); run `outbox migrate` first.")
        }
    }

    /// `available_at` of a message that may go at once: a new message, or a dead letter sent back.
    ///
    /// Only a failed attempt makes a message wait (its `available_at` is then in the future, and
    /// its `attempts` above zero, which is what holds back the rest of its key). A new message is
    /// never made to wait by a time, least of all by its `createdAt`: that comes from the
    /// application host's clock (or the caller), and a clock running ahead would let later
    /// messages of the key overtake it. So no clock decides per-key order; sequence does.
    package static let dueAtOnceMicroseconds: Int64 = 0

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
