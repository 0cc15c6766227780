import Foundation
import Outbox

/// What `GET /api/overview` answers: the latest sample of the store, and the throughput history.
struct AdminOverview: Encodable, Sendable {
    struct Relay: Encodable, Sendable {
        var relayID: String
        var partitions: [Int]
        var inFlight: Int
        var published: Int
        /// Seconds since 1970.
        var expiresAt: Double
    }

    struct Lease: Encodable, Sendable {
        var partition: Int
        var owner: String?
        /// Seconds since 1970; 0 for a lease never taken.
        var expiresAt: Double
    }

    struct Point: Encodable, Sendable {
        /// Seconds since 1970.
        var at: Double
        /// Messages published per second over the interval ending here, summed over relays.
        var publishedPerSecond: Double
        var pending: Int
        var dead: Int
    }

    /// Seconds since 1970, when the sample was read.
    var sampledAt: Double
    var pending: Int
    var retrying: Int
    var inFlight: Int
    var dead: Int
    var deliveredRetained: Int
    var oldestPendingAgeSeconds: Double?
    var partitionCount: Int
    var relays: [Relay]
    var leases: [Lease]
    var throughput: [Point]
    /// The last sampling error, if the latest sample failed (the rest is then the sample before).
    var error: String?

    init(status: OutboxStatus, sampledAt: Date, throughput: [Point], error: String?) {
        self.sampledAt = sampledAt.timeIntervalSince1970
        pending = status.pending
        retrying = status.retrying
        inFlight = status.inFlight
        dead = status.dead
        deliveredRetained = status.deliveredRetained
        oldestPendingAgeSeconds = status.oldestPendingAge?.timeInterval
        partitionCount = status.partitionCount
        relays = status.relays.map {
            Relay(relayID: $0.relayID, partitions: $0.partitions, inFlight: $0.inFlight, published: $0.published,
                  expiresAt: $0.expiresAt.timeIntervalSince1970)
        }
        leases = status.leases.map {
            Lease(partition: $0.partition, owner: $0.owner, expiresAt: max(0, $0.expiresAt.timeIntervalSince1970))
        }
        self.throughput = throughput
        self.error = error
    }
}

/// One dead letter as `GET /api/dead-letters` answers it. Text is sent as it is (JSON-escaped);
/// the page shows it as text, never as markup.
struct AdminDeadLetter: Encodable, Sendable {
    struct Header: Encodable, Sendable {
        var name: String
        var value: String
    }

    var sequence: Int64
    var id: String
    var topic: String
    var key: String?
    var type: String?
    var attempts: Int
    var reason: String?
    /// Seconds since 1970.
    var failedAt: Double
    /// Seconds since 1970.
    var createdAt: Double
    var headers: [Header]
    var payloadBytes: Int
    /// The first bytes of the payload as text, with invalid UTF-8 and control characters shown escaped.
    var payloadPreview: String

    init(_ letter: OutboxDeadLetter) {
        let record = letter.record
        sequence = record.sequence
        id = record.message.id.uuidString.lowercased()
        topic = record.message.topic
        key = record.message.key
        type = record.message.type
        attempts = record.attempts
        reason = record.lastError
        failedAt = letter.failedAt.timeIntervalSince1970
        createdAt = record.message.createdAt.timeIntervalSince1970
        headers = record.message.headers.map { Header(name: $0.name, value: $0.value) }
        payloadBytes = record.message.payload.count
        payloadPreview = AdminDeadLetter.preview(record.message.payload, limit: 512)
    }

    /// Up to `limit` bytes of a payload as readable text: valid UTF-8 stays, control characters
    /// and invalid bytes become `\u{…}` / `\x…`, and a cut is marked with `…`.
    static func preview(_ payload: [UInt8], limit: Int) -> String {
        var text = ""
        var bytes = payload.prefix(limit)
        // Never cut inside a UTF-8 sequence: drop continuation bytes at the end of the prefix.
        if payload.count > limit {
            while let last = bytes.last, last & 0xC0 == 0x80 { bytes = bytes.dropLast() }
            if let last = bytes.last, last >= 0xC0 { bytes = bytes.dropLast() }
        }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar.properties.generalCategory == .control && scalar != "\n" && scalar != "\t" {
                    text += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    text.unicodeScalars.append(scalar)
                }
            case .error: text += "\\x??"
            case .emptyInput: break loop
            }
        }
        return payload.count > limit ? text + "…" : text
    }
}

/// The body of `POST /api/dead-letters/retry` and `/discard`.
struct AdminDeadLetterAction: Decodable, Sendable {
    var sequences: [Int64]
}

/// What an action answers.
struct AdminActionResult: Encodable, Sendable {
    var requested: Int
    var found: Int
}
