/// The names of an outbox's tables (MongoDB: collections) for a validated prefix, quoted by the
/// store's rule: `<prefix>_messages`, `<prefix>_leases`, `<prefix>_relays`, `<prefix>_migrations`.
///
/// Identifiers cannot be bound as parameters, so they are the one thing interpolated into SQL:
/// the prefix is checked against `[A-Za-z_][A-Za-z0-9_]*` (at most 40 characters) before any name
/// is made, and every name is quoted.
package struct OutboxTableNames: Sendable {
    /// The validated prefix.
    package let prefix: String
    package let messages: String
    package let leases: String
    package let relays: String
    package let migrations: String
    private let quote: @Sendable (String) -> String

    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` naming `store` when the prefix
    ///   is not a valid identifier.
    package init(store: String, prefix: String, quote: @escaping @Sendable (String) -> String) throws {
        self.prefix = try OutboxStoreSupport.requireIdentifier(prefix, what: "table prefix", store: store)
        self.quote = quote
        messages = quote("\(prefix)_messages")
        leases = quote("\(prefix)_leases")
        relays = quote("\(prefix)_relays")
        migrations = quote("\(prefix)_migrations")
    }

    /// Another table of the outbox, quoted, e.g. `table("commit_guard")`.
    package func table(_ name: String) -> String { quote(unquoted(name)) }

    /// A table's name without quotes, as the catalog lists it.
    package func unquoted(_ name: String) -> String { "\(prefix)_\(name)" }
}
