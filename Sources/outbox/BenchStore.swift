import Foundation
import Logging
import Outbox
import ServiceLifecycle

/// What the enqueue scenario's application transaction writes.
enum BusinessWrite: Sendable {
    /// One business row: the application's transaction without an outbox.
    case alone
    /// The business row and a second plain row carrying the message's payload: what writing
    /// anything more in the transaction costs, the floor for any transactional outbox.
    case withSecondRow
    /// The business row and the outbox message.
    case withOutbox
}

/// The store a bench run writes to: a separate outbox (its own PostgreSQL schema, or table and
/// collection prefix) on the server the URL names, or the workspace's SQLite file, opened through
/// ``OpenedStore`` like every command's.
struct BenchStore: Sendable {
    /// The relays' store.
    let target: StartedStore
    /// A second store object on the same outbox with its own connections and signals, as another
    /// process would have: the relay hears of its commits only through the store's cross-process
    /// path (NOTIFY, change stream, `data_version`, polling).
    let elsewhere: StartedStore

    var name: String { target.opened.name }
    var store: any OutboxStore { target.opened.store }
    /// Services each scenario runs beside its relays (the store's wake-up).
    var services: [any Service] { target.opened.wakeUps }
    /// Queries the store's wake-up poller made so far (0 for stores that are notified).
    func pollQueries() -> Int { target.opened.pollQueries() }
    /// Statements the relays' store sent so far, where its driver counts them (MySQL).
    func statementsSent() -> Int? { target.opened.statementsSent() }

    /// One application transaction that enqueues the messages.
    func enqueue(_ messages: [OutboxMessage]) async throws { try await target.opened.enqueue(messages) }

    /// One application transaction that inserts a business row, and maybe more (see ``BusinessWrite``).
    func writeBusiness(_ kind: BusinessWrite, _ message: OutboxMessage) async throws {
        switch kind {
        case .alone: try await target.opened.write([], ["order"])
        case .withSecondRow: try await target.opened.write([], ["order", String(decoding: message.payload, as: UTF8.self)])
        case .withOutbox: try await target.opened.write([message], ["order"])
        }
    }

    /// One transaction through the second store object.
    func writeElsewhere(_ messages: [OutboxMessage]) async throws { try await elsewhere.opened.enqueue(messages) }

    func close() async {
        await elsewhere.stop()
        await target.opened.dropNamespace()
        await target.stop()
    }

    static func open(url: String?, workspace: DemoWorkspace, logger: Logger) async throws -> BenchStore {
        let location = try url.map(StoreLocation.init(url:)) ?? StoreLocation(url: "sqlite://\(workspace.databasePath)")
        var settings = StoreSettings(creating: true, wakeUps: true)
        if case .sqlite = location.kind {} else { settings.namespace = "outbox_bench_\(UUID().uuidString.prefix(8).lowercased())" }
        let opened = try await OpenedStore.open(location, settings: settings, logger: logger)
        // The connections run for the whole bench; the wake-up runs with each scenario's relays.
        let target = await opened.start(opened.connections)
        do {
            try await opened.store.migrate()
            try await opened.createBusinessTable()
            settings.wakeUps = false
            let other = try await OpenedStore.open(location, settings: settings, logger: logger)
            return BenchStore(target: target, elsewhere: await other.start())
        } catch {
            await opened.dropNamespace()
            await target.stop()
            throw error
        }
    }
}
