import Logging
import Outbox
import PostgresNIO
import ServiceLifecycle

extension PostgresOutboxStore {
    /// Listens for the outbox's notifications on a connection of the client's pool until graceful
    /// shutdown, leasing a new one after the server restarts; meanwhile relays fall back to polling.
    public func run() async throws {
        guard configuration.pushWakeUps else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.client.withConnection { connection in
                        try await connection.listen(on: self.names.channel) { notifications in
                            self.listening.store(true, ordering: .releasing)
                            // Anything committed while we were away: look now.
                            self.notifications.signal()
                            for try await _ in notifications { self.notifications.signal() }
                        }
                    }
                } catch {
                    self.listening.store(false, ordering: .releasing)
                    if Task.isCancelled { return }
                    self.logger.warning("Outbox listener lost its PostgreSQL connection; relays poll until it is back",
                                        metadata: ["outbox.error": "\(PostgresErrors.map(error, operation: "listen"))"])
                    try? await Task.sleep(for: self.configuration.reconnectDelay)
                }
            }
        }
        listening.store(false, ordering: .releasing)
    }

    public func waitForNewMessages(timeout: Duration) async {
        await wakeUpCursor.wait(on: notifications, timeout: timeout)
    }
}
