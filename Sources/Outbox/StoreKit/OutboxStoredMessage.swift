package import Foundation

/// One stored message's columns as a store read them, before they become an ``OutboxRecord``.
///
/// Stores read each column leniently (a missing value or one of the wrong type is `nil`, or a
/// note in `damage`) and hand the columns here, so that every store applies the same damage rules:
/// a row that cannot be read whole is still returned, with a reason, and the relay dead-letters
/// it at once instead of failing every claim that reads it. Only `sequence` and `partition` must
/// be readable, because they are what the acknowledgement names (and the claim found the row by
/// them).
package struct OutboxStoredMessage {
    package var sequence: Int64
    package var partition: Int
    /// `nil` when the stored id is missing or not a UUID.
    package var id: UUID?
    /// `nil` when missing or not text.
    package var topic: String?
    package var key: String?
    package var type: String?
    /// `nil` when missing or not bytes.
    package var payload: [UInt8]?
    /// The stored header encoding; `nil` when missing or not bytes.
    package var headers: [UInt8]?
    /// `nil` when missing or not a time.
    package var createdAt: Date?
    package var attempts: Int
    package var lastError: String?
    /// What the store itself found wrong (e.g. "the key is not UTF-8 text").
    package var damage: [String]

    package init(
        sequence: Int64, partition: Int, id: UUID?, topic: String?, key: String?, type: String?, payload: [UInt8]?,
        headers: [UInt8]?, createdAt: Date?, attempts: Int, lastError: String?, damage: [String] = []
    ) {
        self.sequence = sequence
        self.partition = partition
        self.id = id
        self.topic = topic
        self.key = key
        self.type = type
        self.payload = payload
        self.headers = headers
        self.createdAt = createdAt
        self.attempts = attempts
        self.lastError = lastError
        self.damage = damage
    }

    /// The record, with ``OutboxRecord/damage`` naming every column that could not be read. A
    /// damaged record carries placeholders (the nil UUID, an empty topic or payload) that are
    /// never published.
    package var record: OutboxRecord {
        var problems = damage
        if id == nil { problems.append("the id is not a UUID") }
        if topic == nil || topic?.isEmpty == true { problems.append("the topic is missing or not text") }
        if payload == nil { problems.append("the payload is missing or not bytes") }
        if createdAt == nil { problems.append("the creation time is missing or not a time") }
        var decodedHeaders: [OutboxHeader] = []
        if let headers {
            let (decoded, headerDamage) = OutboxHeaderCoding.decodeStored(headers)
            decodedHeaders = decoded
            if headerDamage != nil { problems.append("the headers (\(headers.count) bytes) are not an outbox header encoding of UTF-8 text") }
        } else {
            problems.append("the headers are missing or not bytes")
        }
        let message = OutboxMessage(
            id: id ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), topic: topic ?? "", key: key, type: type,
            payload: payload ?? [], headers: decodedHeaders, createdAt: createdAt ?? Date(timeIntervalSince1970: 0))
        let reason = problems.isEmpty
            ? nil : "The stored message is damaged (\(problems.joined(separator: "; "))); it was not published. Something other than swift-outbox wrote it."
        return OutboxRecord(message: message, sequence: sequence, partition: partition, attempts: attempts, lastError: lastError, damage: reason)
    }
}
