public import Outbox

/// A `mongodb://user:password@host:27017[,host…]/database?replicaSet=rs0&tls=true&…` URL (or
/// `mongodb+srv://`), parsed and redacted like every store's URL (``OutboxConnectionURL``).
///
/// Every option of the MongoDB connection-string format is passed to libmongoc as is (it parses
/// the string again, in full, when the client is made). The database defaults to `outbox`.
public struct MongoConnectionURL: OutboxStoreURL {
    /// The connection string as given (with its password).
    let connectionString: String
    /// The database of the URL's path; `outbox` when the path is empty.
    public let database: String
    private let url: OutboxConnectionURL

    /// Parses a URL.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration`, in one sentence that never
    ///   repeats the password.
    public init(_ text: String) throws {
        let url = try OutboxConnectionURL(text, store: "MongoDB", schemes: ["mongodb", "mongodb+srv"],
                                          example: "mongodb://user:password@host:27017/database")
        guard !url.database.contains(where: { "/\\. \"$".contains($0) }), url.database.utf8.count < 64 else {
            throw url.invalid("The MongoDB database name in the URL is not valid; use letters, digits, '_' and '-'.")
        }
        connectionString = text
        database = url.database.isEmpty ? "outbox" : url.database
        self.url = url
    }

    /// The URL without its password or any secret option value.
    public var description: String { url.description }

    /// Settings for a ``MongoClient`` of this server, with default TLS extras and connections.
    public var configuration: MongoConfiguration { MongoConfiguration(url: self) }

    /// Connects once and checks that the server can run transactions (a replica set), so a wrong
    /// host or a standalone server fails now, in one sentence.
    ///
    /// - Throws: ``OutboxError`` naming what to fix; never the password.
    public func checkConnection(timeout: Duration) async throws {
        let configuration = self.configuration
        try await OutboxStoreSupport.checkConnection(
            store: "MongoDB", address: url.hosts.map(\.description).joined(separator: ","), timeout: timeout,
            map: { MongoStoreErrors.map($0, operation: "connect") }
        ) {
            try await MongoClient(configuration: configuration).checkTransactionSupport()
        }
    }
}
