import Foundation
import Outbox
import OutboxKafka

/// `outbox mock-kafka` (3 brokers, topic `chaos` with 6 partitions) as the chaos run's broker:
/// a broker taken down, partition leaders moved, produce errors injected.
final class ChaosKafka: ChaosBroker, @unchecked Sendable {
    // @unchecked: see ChaosBroker.
    let name = "mock Kafka"
    private let kafka: ChaosProcess
    private let bootstrap: String
    var kafkaBootstrap: String? { bootstrap }
    private let follower: KafkaTopicFollower
    private var brokerDown = false
    private var followed: [KafkaReceivedMessage] = []

    init(folder: String) async throws {
        let bootstrapPath = "\(folder)/bootstrap.txt"
        kafka = ChaosProcess(name: "mock-kafka", arguments: ["mock-kafka", "--brokers", "3", "--topic", "chaos:6", "--bootstrap-file", bootstrapPath,
                                                             "--commands-from-stdin"], logPath: "\(folder)/mock-kafka.log")
        try kafka.start(withInput: true)
        var bootstrap = ""
        for _ in 0..<200 where bootstrap.isEmpty {
            bootstrap = (try? String(contentsOfFile: bootstrapPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if bootstrap.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard !bootstrap.isEmpty else {
            kafka.send(SIGKILL)
            throw ChaosFailure("The mock Kafka cluster did not start; see \(folder)/mock-kafka.log.")
        }
        self.bootstrap = bootstrap
        // The consumer reads while the run goes: the mock keeps about 5 MB per partition and drops
        // older messages, which a reader started at the end could no longer audit.
        follower = try KafkaTopicFollower(bootstrapServers: bootstrap, topic: "chaos", properties: ["log_level": "0"])
    }

    deinit { kafka.send(SIGKILL) }

    var processes: [ChaosProcess] { [kafka] }

    var relayArguments: [String] {
        ["--kafka-brokers", bootstrap, "-X", "max.in.flight.requests.per.connection=1", "-X", "reconnect.backoff.max.ms=500"]
    }

    var faults: [String] { brokerDown ? ["produce-errors", "move-leaders"] : ["produce-errors", "move-leaders", "broker-down"] }

    func inject(_ fault: String, elapsed: @Sendable () -> String, progress: @Sendable (String) -> Void) async throws {
        switch fault {
        case "produce-errors":
            kafka.command("produce-errors 6")
            progress("\(elapsed()) injected 6 produce errors")
        case "broker-down":
            brokerDown = true
            kafka.command("broker-down 1")
            progress("\(elapsed()) took Kafka broker 1 (and the partitions it leads) down")
            try await Task.sleep(for: .milliseconds(Int64.random(in: 500...2000)))
            moveLeaders()
            progress("\(elapsed()) gave every partition a leader and the consumer group a coordinator again")
        default:
            moveLeaders()
            progress("\(elapsed()) moved partition leaders and the consumer group's coordinator")
        }
    }

    /// Moves every partition's leader, and the inbox consumers' group coordinator, to brokers
    /// that are up (a group whose coordinator is down cannot rebalance or commit).
    private func moveLeaders() {
        let low = brokerDown ? 2 : 1
        for partition in 0..<6 { kafka.command("leader chaos \(partition) \(Int.random(in: low...3))") }
        kafka.command("coordinator \(ChaosConsumerCommand.group) \(Int.random(in: low...3))")
    }

    func settle() async throws { moveLeaders() }

    func readBack(count: Int) async throws -> ChaosReadBack {
        let received = try await follower.finish(count: count, timeout: .seconds(90))
        followed = received.messages
        return ChaosReadBack(ids: received.messages.compactMap(\.outboxID), trimmed: received.trimmedOffsets,
                             positions: Self.positions(received.messages))
    }

    func describeLoss(ledger: ChaosLedger, lostIDs: [UUID], readBack: ChaosReadBack, count: Int) async -> String {
        // A second reader from offset 0 tells a message the broker never had from one the
        // follower missed; the key's neighbours show where in the partition the gap lies.
        let reread = try? await KafkaTopicReader(bootstrapServers: bootstrap, properties: ["log_level": "0"])
            .readReporting(topic: "chaos", count: count, timeout: .seconds(60))
        return ChaosPostMortem(ledger: ledger, lostIDs: lostIDs, seen: readBack.positions,
                               seenAgain: reread.map { Self.positions($0.messages) }).text
    }

    private static func positions(_ messages: [KafkaReceivedMessage]) -> [UUID: [String]] {
        var found: [UUID: [String]] = [:]
        for message in messages {
            guard let id = message.outboxID else { continue }
            found[id, default: []].append("p\(message.partition)@\(message.offset)")
        }
        return found
    }

    func stop() async { await kafka.stop(grace: .seconds(5)) }
}
