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
    /// - Throws: ``OutboxError`` with code `.invalidMessage` for the first message that breaks the limits.
    package static func prepare(_ messages: some Sequence<OutboxMessage>, limits: OutboxMessageLimits,
                                partitionCount: Int) throws -> [OutboxPreparedMessage] {
        try messages.map { original in
            try original.validate(limits: limits)
            let message = original.capturingTraceContext()
            return OutboxPreparedMessage(
                message: message,
                partition: OutboxPartitioning.partition(key: message.key, id: message.id, partitionCount: partitionCount),
                encodedHeaders: OutboxHeaderCoding.encode(message.headers))
        }
    }
}
