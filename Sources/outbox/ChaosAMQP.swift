import Foundation
import Outbox
import OutboxAMQP

/// A RabbitMQ broker given by URL as the chaos run's broker: a topic exchange `chaos` with a
/// durable queue taking every key, and an exchange `chaos-poison` no queue is bound to (poison is
/// unroutable there: RabbitMQ takes large messages). With `--broker-command` the broker is
/// restarted, SIGKILLed and stopped for seconds (the command is called with nothing, `kill`,
/// `stop` and `start`, as scripts/restart-rabbitmq.sh takes them).
final class ChaosAMQP: ChaosBroker, @unchecked Sendable {
    // @unchecked: see ChaosBroker.
    let name = "RabbitMQ"
    private let url: String
    private let command: String?
    private let folder: String
    static let exchange = "chaos"
    static let queue = "chaos-all"
    static let poisonExchange = "chaos-poison"

    init(url: String, command: String?, folder: String) throws {
        self.url = url
        self.command = command
        self.folder = folder
        let admin = try AMQPAdmin(url: url)
        // An empty queue: the final counts are this run's.
        try admin.delete(exchange: Self.exchange, queue: Self.queue)
        try admin.declareExchange(Self.exchange, type: "topic")
        try admin.declareQueue(Self.queue, boundTo: Self.exchange, bindingKey: "#")
        try admin.declareExchange(Self.poisonExchange, type: "topic")
    }

    var processes: [ChaosProcess] { [] }
    var relayArguments: [String] { ["--amqp-url", url] }
    var writerArguments: [String] { ["--poison-topic", Self.poisonExchange] }
    var faults: [String] { command == nil ? [] : ["restart-broker", "kill-broker", "broker-down"] }
    /// RabbitMQ takes 5–15 s to stop and start.
    var faultSpacing: Duration { .seconds(12) }

    func inject(_ fault: String, elapsed: @Sendable () -> String, progress: @Sendable (String) -> Void) async throws {
        guard let command else { return }
        switch fault {
        case "kill-broker":
            try await run(command + " kill")
            progress("\(elapsed()) SIGKILLed RabbitMQ (and started it again)")
        case "broker-down":
            try await run(command + " stop")
            let down = Int64.random(in: 2000...5000)
            progress("\(elapsed()) stopped RabbitMQ for \(down) ms")
            try await Task.sleep(for: .milliseconds(down))
            try await run(command + " start")
        default:
            try await run(command)
            progress("\(elapsed()) restarted RabbitMQ")
        }
    }

    private func run(_ line: String) async throws {
        let status = await runShell(line, logPath: "\(folder)/broker-command.log")
        guard status == 0 else { throw ChaosFailure("The broker command failed (status \(status)); see \(folder)/broker-command.log.") }
    }

    func settle() async throws {
        if (try? AMQPAdmin(url: url)) == nil, let command { try await run(command + " start") }
    }

    func readBack(count: Int) async throws -> ChaosReadBack {
        let deadline = ContinuousClock.now + .seconds(60)
        let admin = try AMQPAdmin(url: url)
        var ids: [UUID] = []
        var positions: [UUID: [String]] = [:]
        while true {
            for message in try admin.take(from: Self.queue) {
                guard let id = message.messageID.flatMap(UUID.init(uuidString:)) else { continue }
                ids.append(id)
                positions[id, default: []].append("#\(ids.count)")
            }
            if Set(ids).count >= count || ContinuousClock.now >= deadline { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        return ChaosReadBack(ids: ids, trimmed: 0, positions: positions)
    }

    func describeLoss(ledger: ChaosLedger, lostIDs: [UUID], readBack: ChaosReadBack, count: Int) async -> String {
        ChaosPostMortem(ledger: ledger, lostIDs: lostIDs, seen: readBack.positions, seenAgain: nil).text
    }

    func stop() async {
        try? AMQPAdmin(url: url).delete(exchange: Self.exchange, queue: Self.queue)
        try? AMQPAdmin(url: url).delete(exchange: Self.poisonExchange, queue: nil)
    }
}
