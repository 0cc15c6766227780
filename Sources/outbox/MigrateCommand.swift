import ArgumentParser
import Outbox

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Create or upgrade the outbox tables; safe to run again.")

    @OptionGroup var options: StoreOptions

    @Option(help: "Virtual partitions, fixed when the tables are first created (1–4096). More allow more relays.")
    var partitions: Int = 32

    func run() async throws {
        guard (1...4096).contains(partitions) else {
            throw ValidationError("--partitions must be between 1 and 4096.")
        }
        let location = try options.location()
        let status = try await location.withStore(partitionCount: partitions, creating: true) { store in
            try await store.migrate()
            return try await store.status(now: .now)
        }
        print("Migrated \(location): \(status.partitionCount) partitions, \(status.pending) pending, \(status.dead) dead.")
    }
}
