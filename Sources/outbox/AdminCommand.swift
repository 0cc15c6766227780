import ArgumentParser
import Foundation
import Logging
import Outbox
import OutboxAdmin
import ServiceLifecycle

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Serve the admin web page of a store: counts, throughput, relays, partitions, and dead letters to retry or discard.",
        discussion: """
            Beyond loopback the page needs a token (--token, or better OUTBOX_ADMIN_TOKEN, which other users of the machine \
            cannot read in the process list); open http://HOST:PORT/?token=TOKEN once and the browser keeps it in a cookie. \
            Stops on SIGTERM or SIGINT.
            """)

    @OptionGroup var options: StoreOptions

    @Option(help: ArgumentHelp("Where to serve the page.", valueName: "host:port"))
    var listen = "127.0.0.1:8080"

    @Option(help: "The token every request must carry (default: OUTBOX_ADMIN_TOKEN); required beyond loopback.")
    var token: String?

    @Option(help: "Seconds between readings of the store's status (an exact count over the whole outbox).")
    var sampleSeconds: Double = 5

    func validate() throws {
        guard sampleSeconds >= 0.2 && sampleSeconds <= 3_600 else { throw ValidationError("--sample-seconds must be between 0.2 and 3600.") }
        do {
            _ = try OutboxAdminAccess(token: resolvedToken, address: try OutboxListenAddress(parsing: listen))
        } catch let error as OutboxError {
            throw ValidationError("--listen/--token: \(error.message)")
        }
    }

    private var resolvedToken: String? {
        token ?? ProcessInfo.processInfo.environment["OUTBOX_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws {
        let logger = try options.makeLogger()
        let location = try options.location()
        let opened = try await StoreStartup.open(location, settings: StoreSettings(), waitingUpTo: .seconds(60), logger: logger)
        let server = try OutboxAdminServer(
            store: opened.store, address: try OutboxListenAddress(parsing: listen), token: resolvedToken,
            sampleInterval: .milliseconds(Int64(sampleSeconds * 1000)), logger: logger,
            onListening: { port in
                // The one line a script waits for; the port matters when --listen asked for port 0.
                FileHandle.standardOutput.write(Data("Serving the admin page of \(location) at http://\(listenHost):\(port)/\n".utf8))
            })
        let group = ServiceGroup(services: opened.services + [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    private var listenHost: String {
        (try? OutboxListenAddress(parsing: listen)).map { $0.host.contains(":") ? "[\($0.host)]" : $0.host } ?? listen
    }
}
