import Foundation
import Outbox
import Synchronization

/// Passes every call to a store and counts the ones that query it, for the bench's idle figure.
final class CountingStore: OutboxStore, Sendable {
    private let inner: any OutboxStore
    private let count = Atomic<Int>(0)

    init(_ inner: any OutboxStore) { self.inner = inner }

    /// Store operations so far (each is one transaction or statement).
    var queries: Int { count.load(ordering: .relaxed) }

    private func counted<T>(_ body: () async throws -> T) async rethrows -> T {
        count.wrappingAdd(1, ordering: .relaxed)
        return try await body()
    }

    func migrate() async throws { try await counted { try await inner.migrate() } }
    func heartbeat(_ request: OutboxHeartbeat) async throws -> OutboxLeaseGrant { try await counted { try await inner.heartbeat(request) } }
    func resign(relayID: String) async throws { try await counted { try await inner.resign(relayID: relayID) } }
    func claim(partitions: [Int], limit: Int, maximumBytes: Int, now: Date, excluding: [Int64]) async throws -> [OutboxRecord] {
        try await counted { try await inner.claim(partitions: partitions, limit: limit, maximumBytes: maximumBytes, now: now, excluding: excluding) }
    }
    func acknowledge(_ acknowledgement: OutboxAcknowledgement) async throws -> OutboxAcknowledgementResult {
        try await counted { try await inner.acknowledge(acknowledgement) }
    }
    /// Not counted: stores that poll count their probes themselves (`BenchStore.pollQueries`).
    func waitForNewMessages(timeout: Duration) async { await inner.waitForNewMessages(timeout: timeout) }
    func removeDelivered(finishedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await counted { try await inner.removeDelivered(finishedBefore: cutoff, limit: limit) }
    }
    func status(now: Date) async throws -> OutboxStatus { try await counted { try await inner.status(now: now) } }
    func backlog(now: Date, countLimit: Int) async throws -> OutboxBacklog {
        try await counted { try await inner.backlog(now: now, countLimit: countLimit) }
    }
    func deadLetters(limit: Int, afterSequence: Int64?) async throws -> [OutboxDeadLetter] {
        try await counted { try await inner.deadLetters(limit: limit, afterSequence: afterSequence) }
    }
    func retryDeadLetters(sequences: [Int64], now: Date) async throws -> Int {
        try await counted { try await inner.retryDeadLetters(sequences: sequences, now: now) }
    }
    func discardDeadLetters(sequences: [Int64]) async throws -> Int { try await counted { try await inner.discardDeadLetters(sequences: sequences) } }
}
