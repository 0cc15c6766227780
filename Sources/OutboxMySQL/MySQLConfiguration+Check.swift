import Outbox

extension MySQLConfiguration {
    /// Connects once and disconnects, so a wrong host, port, user, password or database fails now,
    /// in one sentence, instead of as a pool that keeps retrying.
    ///
    /// - Throws: ``OutboxError`` naming what to fix; never the password.
    public func checkConnection() async throws {
        do {
            let connection = try await MySQLConnection.connect(self)
            await connection.close()
        } catch {
            let mapped = MySQLStoreErrors.map(error, operation: "connect")
            if let outbox = mapped as? OutboxError, outbox.code == .storeUnavailable {
                throw OutboxError(code: .storeUnavailable, operation: "connect",
                                  message: "Cannot connect to MySQL at \(host):\(port); check the host and port and that the server is up.",
                                  isRetriable: true, underlying: outbox.underlying)
            }
            throw mapped
        }
    }
}
