import ArgumentParser
import Foundation
import Logging

@main
struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "The transactional outbox: migrate a store, relay its messages, inspect it, or run the demo.",
        discussion: """
            The store is chosen by URL with --store or the OUTBOX_STORE_URL environment variable
            (default: \(StoreLocation.defaultURL)).
            """,
        subcommands: [DemoCommand.self, MigrateCommand.self, RelayCommand.self, StatusCommand.self, DeadLettersCommand.self, AdminCommand.self, MockKafkaCommand.self, BenchCommand.self, ChaosCommand.self, ChaosWriterCommand.self, ChaosConsumerCommand.self, KafkaProbeCommand.self]
    )

    /// Runs the command the arguments name, with a umask that keeps every file the CLI creates (an
    /// SQLite database and its WAL, JSON-lines output, chaos and bench files) readable by its owner
    /// only: they hold message payloads.
    static func main() async {
        umask(0o077)
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every command that touches a store shares.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The store URL, e.g. sqlite:///var/lib/app/outbox.sqlite (env: OUTBOX_STORE_URL).")
    var store: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else {
            throw ValidationError("Unknown log level '\(logLevel)'; use trace, debug, info, notice, warning, error or critical.")
        }
    }

    func location() throws -> StoreLocation { try StoreLocation.resolve(store) }

    func makeLogger(label: String = "outbox") throws -> Logger {
        guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
            throw ValidationError("Unknown log level '\(logLevel)'; use trace, debug, info, notice, warning, error or critical.")
        }
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = level
        return logger
    }
}
