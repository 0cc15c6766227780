import Foundation
import Logging
import Outbox
import ServiceLifecycle

/// The scenarios and raw-limit passes of `outbox bench`, one function each.
extension BenchCommand {
    func records(_ range: Range<Int>, payload: [UInt8]) -> [OutboxRecord] {
        range.map { index in
            OutboxRecord(message: OutboxMessage(topic: "bench", key: "key-\(index % keys)", type: "Bench", payload: payload),
                         sequence: Int64(index), partition: 0)
        }
    }

    func measureProducer(_ publisher: any OutboxPublisher, payload: [UInt8]) async throws -> Double {
        let started = ContinuousClock.now
        var next = 0
        var reported = 0
        try await withThrowingTaskGroup(of: Int.self) { group in
            var inFlight = 0
            while next < messages || inFlight > 0 {
                while inFlight < 2 && next < messages {
                    let batch = records(next..<min(next + batchSize, messages), payload: payload)
                    next += batch.count
                    inFlight += 1
                    group.addTask { try await publisher.publish(batch).filter(\.isDelivered).count }
                }
                reported += try await group.next() ?? 0
                inFlight -= 1
                if next % 100_000 < batchSize && messages >= 500_000 {
                    FileHandle.standardError.write(Data("    \(next) produced, RSS \(Self.residentMegabytes()) MB\n".utf8))
                }
            }
        }
        guard reported == messages else {
            throw OutboxError(code: .publisherUnavailable, operation: "bench", message: "Only \(reported) of \(messages) messages were delivered.")
        }
        return Double(messages) / (ContinuousClock.now - started).timeInterval
    }

    func preload(_ target: BenchStore, count: Int, payload: [UInt8]) async throws {
        for start in stride(from: 0, to: count, by: 1000) {
            if start > 0 && start % 200_000 == 0 { FileHandle.standardError.write(Data("    \(start) of \(count) loaded\n".utf8)) }
            let batch = (start..<min(start + 1000, count)).map {
                OutboxMessage(topic: "bench", key: "key-\($0 % keys)", type: "Bench", payload: payload)
            }
            try await target.enqueue(batch)
        }
    }

    /// What the steady scenario measured, in milliseconds per delivered message.
    struct SteadyResult {
        /// Commit (the application's commit call returned) → broker ack.
        var latencies: [Double]
        /// Commit → the relay hands the message to the publisher (wake-up and claim).
        var toPublish: [Double]
        /// Publisher call → broker ack.
        var broker: [Double]
        var duplicates: Int
    }

    /// Offers `rate` single-message transactions per second for `seconds`, relayed to Kafka.
    func measureSteady(_ target: BenchStore, _ publisher: any OutboxPublisher, payload: [UInt8], logger: Logger) async throws -> SteadyResult {
        let counter = CountingPublisher(publisher, recordsTimings: true)
        let relay = OutboxRelay(store: target.store, publisher: counter,
                                configuration: OutboxRelayConfiguration(relayID: "bench-steady", batchSize: batchSize, maximumBatchesInFlight: batchesInFlight), logger: logger)
        let group = ServiceGroup(services: target.services + [relay], logger: logger)
        let relaying = Task { try await group.run() }
        try await Task.sleep(for: .seconds(1))  // leases and listener settle
        let total = rate * seconds
        var committedAt: [UUID: ContinuousClock.Instant] = [:]
        committedAt.reserveCapacity(total)
        let started = ContinuousClock.now
        for index in 0..<total {
            let due = started + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate))
            if due > .now { try await Task.sleep(until: due, clock: .continuous) }
            let message = OutboxMessage(topic: "bench", key: "key-\(index % keys)", type: "Bench", payload: payload)
            try await target.enqueue([message])
            committedAt[message.id] = .now
        }
        while counter.delivered < total && ContinuousClock.now - started < .seconds(seconds + 30) {
            try await Task.sleep(for: .milliseconds(5))
        }
        await group.triggerGracefulShutdown()
        try await relaying.value
        func milliseconds(_ duration: Duration) -> Double { max(0, duration.timeInterval * 1000) }
        var result = SteadyResult(latencies: [], toPublish: [], broker: [], duplicates: counter.delivered - total)
        for (id, timing) in counter.timings {
            guard let commit = committedAt[id] else { continue }
            result.latencies.append(milliseconds(timing.acknowledged - commit))
            result.toPublish.append(milliseconds(timing.published - commit))
            result.broker.append(milliseconds(timing.acknowledged - timing.published))
        }
        result.latencies.sort()
        result.toPublish.sort()
        result.broker.sort()
        return result
    }

    /// Sequential application transactions (one business row, and a second row or one message).
    func measureCommits(_ target: BenchStore, _ kind: BusinessWrite, payload: [UInt8]) async throws -> Double {
        try await measureCommits(target, [kind], payload: payload)[kind] ?? 0
    }

    /// Transactions a second of each kind, `transactions` of each, run interleaved: blocks of 100
    /// (or fewer) of one kind after another, the order rotated every round. Run one kind after
    /// the other, a drift of the shared machine or of the server's background work (the purge of
    /// an earlier scenario's rows, a checkpoint) lands on whichever ran then: the ratio between
    /// two kinds measured a second apart swung from 0.63× to 0.83× in runs of the same build.
    func measureCommits(_ target: BenchStore, _ kinds: [BusinessWrite], payload: [UInt8]) async throws -> [BusinessWrite: Double] {
        var elapsed: [BusinessWrite: Duration] = [:]
        let block = max(1, min(100, transactions / 10))
        var done = 0, round = 0
        while done < transactions {
            let count = min(block, transactions - done)
            for position in kinds.indices {
                let kind = kinds[(position + round) % kinds.count]
                let started = ContinuousClock.now
                for index in done..<(done + count) {
                    try await target.writeBusiness(kind, OutboxMessage(topic: "bench", key: "key-\(index % keys)", type: "Bench", payload: payload))
                }
                elapsed[kind, default: .zero] += ContinuousClock.now - started
            }
            done += count
            round += 1
        }
        if kinds.contains(.withOutbox) {
            // Leave no backlog behind for the next scenario.
            _ = try await measureStore(target.store)
        }
        return elapsed.mapValues { Double(transactions) / $0.timeInterval }
    }

    /// What the idle scenario measured.
    struct IdleResult {
        /// Store calls per second of a relay with nothing to do (after it settled).
        var queries: Double
        /// Probes per second of the store's wake-up poller (stores that cannot notify).
        var polls: Double
        /// Statements per second sent to the server, the poller's included, where the store's
        /// driver counts them (MySQL): what the store calls cost in round trips.
        var statements: Double?
        /// Milliseconds from the commit of a message written elsewhere (another store object, as
        /// another process would) to its broker ack, after the relay sat idle; one per round.
        var firstMessage: [Double]
    }

    /// An idle relay: its query rate, then how soon it publishes a message committed elsewhere.
    func measureIdle(_ target: BenchStore, _ publisher: any OutboxPublisher, payload: [UInt8], logger: Logger) async throws -> IdleResult {
        let counting = CountingStore(target.store)
        let counter = CountingPublisher(publisher, recordsTimings: true)
        let relay = OutboxRelay(store: counting, publisher: counter, configuration: OutboxRelayConfiguration(relayID: "bench-idle"), logger: logger)
        let group = ServiceGroup(services: target.services + [relay], logger: logger)
        let relaying = Task { try await group.run() }
        try await Task.sleep(for: .seconds(3))
        let (queries, polls, statements) = (counting.queries, target.pollQueries(), target.statementsSent())
        try await Task.sleep(for: .seconds(idleSeconds))
        var result = IdleResult(queries: Double(counting.queries - queries) / Double(idleSeconds),
                                polls: Double(target.pollQueries() - polls) / Double(idleSeconds), firstMessage: [])
        if let statements, let now = target.statementsSent() { result.statements = Double(now - statements) / Double(idleSeconds) }
        for round in 0..<3 {
            if round > 0 { try await Task.sleep(for: .seconds(5)) }  // idle again
            let message = OutboxMessage(topic: "bench", key: "idle-\(round)", type: "Bench", payload: payload)
            try await target.writeElsewhere([message])
            let committed = ContinuousClock.now
            while counter.timings[message.id] == nil && ContinuousClock.now - committed < .seconds(30) {
                try await Task.sleep(for: .milliseconds(1))
            }
            if let timing = counter.timings[message.id] {
                result.firstMessage.append(max(0, (timing.acknowledged - committed).timeInterval * 1000))
            }
        }
        await group.triggerGracefulShutdown()
        try await relaying.value
        return result
    }

    func measureStore(_ store: any OutboxStore) async throws -> Double {
        let grant = try await store.heartbeat(OutboxHeartbeat(relayID: "bench-raw", leaseDuration: .seconds(600)))
        let partitions = grant.owned.sorted()
        let started = ContinuousClock.now
        var drained = 0
        while true {
            let batch = try await store.claim(partitions: partitions, limit: batchSize, now: Date())
            if batch.isEmpty { break }
            _ = try await store.acknowledge(OutboxAcknowledgement(
                relayID: "bench-raw", delivered: batch.map { OutboxMessageReference(sequence: $0.sequence, partition: $0.partition) }))
            drained += batch.count
        }
        try await store.resign(relayID: "bench-raw")
        return Double(drained) / (ContinuousClock.now - started).timeInterval
    }

    /// The drain rate of a small backlog, committed at once while the relay runs: started relays
    /// drain it in tens of milliseconds, so a relay's start (leases, connections) would otherwise
    /// be most of what is measured. Median of five rounds.
    func measureSmallBacklog(_ target: BenchStore, _ publisher: any OutboxPublisher, payload: [UInt8], logger: Logger) async throws -> Double {
        let counter = CountingPublisher(publisher)
        let relay = OutboxRelay(store: target.store, publisher: counter,
                                configuration: OutboxRelayConfiguration(relayID: "bench-small-backlog", batchSize: batchSize, maximumBatchesInFlight: batchesInFlight), logger: logger)
        let group = ServiceGroup(services: target.services + [relay], logger: logger)
        let relaying = Task { try await group.run() }
        try await Task.sleep(for: .seconds(1))  // leases and listener settle
        var rates: [Double] = []
        for round in 0..<5 {
            let before = counter.delivered
            let messages = (0..<smallBacklog).map {
                OutboxMessage(topic: "bench", key: "key-\($0 % keys)", type: "Bench", payload: payload)
            }
            try await target.enqueue(messages)
            let committed = ContinuousClock.now
            while counter.delivered - before < smallBacklog && ContinuousClock.now - committed < .seconds(60) {
                try await Task.sleep(for: .microseconds(200))
            }
            rates.append(Double(counter.delivered - before) / (ContinuousClock.now - committed).timeInterval)
            if round < 4 { try await Task.sleep(for: .milliseconds(200)) }
        }
        await group.triggerGracefulShutdown()
        try await relaying.value
        return rates.sorted()[rates.count / 2]
    }

    /// Drains `count` preloaded messages with `relays` relays on the store; messages per second.
    func measureRelay(_ target: BenchStore, _ publisher: any OutboxPublisher, relays: Int, count: Int, logger: Logger) async throws -> Double {
        let counter = CountingPublisher(publisher)
        let relayServices = (0..<relays).map { index in
            OutboxRelay(store: target.store, publisher: counter,
                        configuration: OutboxRelayConfiguration(relayID: "bench-relay-\(index)-\(UUID().uuidString.prefix(4))", batchSize: batchSize, maximumBatchesInFlight: batchesInFlight),
                        logger: logger)
        }
        let group = ServiceGroup(services: target.services + relayServices, logger: logger)
        let started = ContinuousClock.now
        let relaying = Task { try await group.run() }
        var reported = 0
        while counter.delivered < count {
            try await Task.sleep(for: .milliseconds(5))
            if counter.delivered - reported >= 250_000 {
                reported = counter.delivered
                FileHandle.standardError.write(Data("    \(reported) of \(count) relayed\n".utf8))
            }
            if ContinuousClock.now - started > .seconds(900) { break }
        }
        let elapsed = ContinuousClock.now - started
        await group.triggerGracefulShutdown()
        try await relaying.value
        return Double(counter.delivered) / elapsed.timeInterval
    }
}
