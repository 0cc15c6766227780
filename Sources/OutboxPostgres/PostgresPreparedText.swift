import Logging
import Outbox
import PostgresNIO
import Synchronization

/// One of the store's statements that the server keeps prepared on every connection that runs it:
/// parsed and planned once per connection, not on every call as a `query` is.
///
/// postgres-nio prepares a statement from its type (`PostgresPreparedStatement`'s static name and
/// text), but the store's texts depend on the configured schema and prefix. So one type,
/// ``PostgresPreparedCall``, reads the name and text of the call in progress from a task-local
/// value that ``execute(_:on:logger:)`` sets around the call; the name is a hash of the text, so
/// two outboxes sharing a connection never share a statement.
final class PostgresPreparedText: Sendable {
    let sql: String
    let dataTypes: [PostgresDataType]
    private let textHash: String
    /// postgres-nio remembers a failed preparation on the connection for good: a statement first
    /// prepared inside a transaction the application had already aborted would fail there forever.
    /// Any error starts a new generation, a new name, so the next call prepares afresh.
    private let generation = Atomic<Int>(0)

    init(sql: String, dataTypes: [PostgresDataType]) {
        self.sql = sql
        self.dataTypes = dataTypes
        textHash = String(OutboxPartitioning.fnv1a(sql.utf8), radix: 16)
    }

    /// The statement's current name on the server (within PostgreSQL's 63 bytes).
    var name: String { "outbox_\(textHash)_\(generation.load(ordering: .relaxed))" }

    /// Runs the statement with `bindings` on `connection`, preparing it there first if needed
    /// (one extra round trip, once per connection).
    func execute(_ bindings: PostgresBindings, on connection: PostgresConnection, logger: Logger) async throws {
        let current = PostgresPreparedCall.Text(name: name, sql: sql, dataTypes: dataTypes)
        do {
            try await PostgresPreparedCall.$current.withValue(current) {
                // Every row read (a function call returns one), so the statement is complete.
                let rows: AsyncThrowingMapSequence<PostgresRowSequence, ()> =
                    try await connection.execute(PostgresPreparedCall(bindings: bindings), logger: logger)
                for try await _ in rows {}
            }
        } catch {
            generation.add(1, ordering: .relaxed)
            throw error
        }
    }
}

/// The prepared statement postgres-nio runs for a ``PostgresPreparedText``; see there.
struct PostgresPreparedCall: PostgresPreparedStatement {
    struct Text: Sendable {
        let name: String
        let sql: String
        let dataTypes: [PostgresDataType]
    }

    /// The statement of the call in progress; postgres-nio reads it synchronously at the call.
    @TaskLocal static var current = Text(name: "", sql: "", dataTypes: [])
    static var name: String { current.name }
    static var sql: String { current.sql }
    static var bindingDataTypes: [PostgresDataType] { current.dataTypes }

    typealias Row = ()
    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> Row {}
}
