import ArgumentParser
import Foundation
import Outbox

/// The brokers `outbox bench` and `outbox chaos` can run against (`--publisher`).
enum BrokerKind: String, ExpressibleByArgument, CaseIterable {
    case kafka, nats, amqp
}

/// The broker side of `outbox chaos`: started as real processes, broken now and then, and read
/// back at the end. One implementation per broker (`ChaosKafka`, `ChaosNATS`). Driven by the chaos
/// command's one task (implementations are `@unchecked Sendable` for its closures).
protocol ChaosBroker: AnyObject, Sendable {
    /// How progress lines name it, e.g. "mock Kafka".
    var name: String { get }
    /// The broker's own processes, checked after start-up.
    var processes: [ChaosProcess] { get }
    /// What `outbox relay` needs to publish to it.
    var relayArguments: [String] { get }
    /// What the writer needs for this broker (where poison goes).
    var writerArguments: [String] { get }
    /// The Kafka bootstrap servers inbox consumers read from; `nil` for brokers the inbox has no
    /// source for yet.
    var kafkaBootstrap: String? { get }
    /// The faults it can show; each run picks one now and then.
    var faults: [String] { get }
    /// Least time between two of its faults (a broker that takes seconds to restart would
    /// otherwise leave no time for anything else).
    var faultSpacing: Duration { get }
    /// Shows fault `name`; returns what happened, for the progress line.
    func inject(_ name: String, elapsed: @Sendable () -> String, progress: @Sendable (String) -> Void) async throws
    /// Brings everything back up before the relays drain.
    func settle() async throws
    /// Every message on the broker, duplicates included, per key in broker order, once `count`
    /// distinct messages are there or the wait is over.
    func readBack(count: Int) async throws -> ChaosReadBack
    /// Describes the lost messages for `lost.txt`.
    func describeLoss(ledger: ChaosLedger, lostIDs: [UUID], readBack: ChaosReadBack, count: Int) async -> String
    /// Stops the broker's processes.
    func stop() async
}

extension ChaosBroker {
    var writerArguments: [String] { [] }
    var kafkaBootstrap: String? { nil }
    var faultSpacing: Duration { .zero }
}

/// What the broker holds at the end of a chaos run.
struct ChaosReadBack {
    /// The outbox ids, duplicates included, in broker order per key.
    var ids: [UUID]
    /// Messages the broker dropped before they were read (Kafka's mock keeps ~5 MB per partition).
    var trimmed: Int64
    /// Where each message was found ("p3@120", "seq 42"), for the post-mortem.
    var positions: [UUID: [String]]
}
