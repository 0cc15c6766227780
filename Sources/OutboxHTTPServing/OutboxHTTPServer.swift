package import Hummingbird
package import Logging
package import Outbox

/// Runs a Hummingbird router on an ``OutboxListenAddress`` the way every server of the outbox does
/// (the metrics endpoint, the admin page): its own logs at `notice` and above only, the bound port
/// reported once listening, and a failure to listen turned into one sentence naming the address.
package enum OutboxHTTPServer {
    /// Serves `router` until graceful shutdown.
    ///
    /// - Parameter what: the server in the failure sentence, e.g. "The metrics endpoint".
    /// - Throws: ``OutboxError`` (`.invalidConfiguration`) when the address cannot be bound.
    package static func run(
        _ router: Router<BasicRequestContext>, on address: OutboxListenAddress, what: String, logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void
    ) async throws {
        let listening = OutboxStartupFlag()
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in
                listening.set()
                onListening(channel.localAddress?.port ?? address.port)
            },
            logger: quiet)
        do {
            try await application.run()
        } catch where !listening.isSet {
            throw OutboxError(code: .invalidConfiguration, operation: "listen",
                              message: "\(what) could not listen on \(address) (\(error)); choose a free port on an address of this machine.")
        }
    }
}
