import Foundation

/// A message ready to be written by any store: checked against the limits, with the caller's
/// trace context in its headers, its partition chosen, and its headers encoded.
///
/// Every store's `enqueue` starts here, so the rules (limits, reserved headers, trace context,
/// partitioning) are written once.
package struct OutboxPreparedMessage: Sendable {
    package let message: OutboxMessage
    package let partition: Int
    package let encodedHeaders: [UInt8]

    /// Prepares `messages` in order.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for the first message that breaks the
    ///   limits, or for an id named twice.
    package static func prepare(_ messages: [OutboxMessage], limits: OutboxMessageLimits,
                                partitionCount: Int) throws -> [OutboxPreparedMessage] {
        // A loop over a concrete array: called across modules with `some Sequence`, this ran as
        // unspecialised generic code (witness tables, metadata lookups): `perf` sampled 9.9 µs
        // per one-message enqueue there, 2.6 µs here.
        var prepared: [OutboxPreparedMessage] = []
        prepared.reserveCapacity(messages.count)
        // Said here by name; the store's unique index would refuse it as well, less clearly.
        if messages.count > 1 {
            var seen = Set<UUID>(minimumCapacity: messages.count)
            for message in messages where !seen.insert(message.id).inserted {
                throw OutboxError(code: .invalidMessage, operation: "enqueue",
                                  message: "Two messages of one enqueue have the id \(message.id); give every message its own id.")
            }
        }
        for original in messages {
            try original.validate(limits: limits)
            let message = original.capturingTraceContext()
            prepared.append(OutboxPreparedMessage(
                message: message,
                partition: OutboxPartitioning.partition(key: message.key, id: message.id, partitionCount: partitionCount),
                encodedHeaders: OutboxHeaderCoding.encode(message.headers)))
        }
        return prepared
    }
}
