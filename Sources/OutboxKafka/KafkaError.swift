import CRdKafka

/// The error OutboxKafka throws: a librdkafka error code, what was being done, and whether a retry can help.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// The librdkafka error code (`rd_kafka_resp_err_t`), e.g. `10` for MSG_SIZE_TOO_LARGE.
    public var code: Int32
    /// What was being done.
    public var operation: String
    /// One sentence naming what went wrong and, where possible, what to fix.
    public var message: String
    /// Whether trying again later can succeed.
    public var isRetriable: Bool

    /// Creates an error.
    public init(code: Int32, operation: String, message: String, isRetriable: Bool) {
        self.code = code
        self.operation = operation
        self.message = message
        self.isRetriable = isRetriable
    }

    public var description: String { message }

    /// librdkafka's short name of an error code, e.g. `Broker: Message size too large`.
    static func name(of code: rd_kafka_resp_err_t) -> String {
        String(cString: rd_kafka_err2str(code))
    }
}

/// Broker error codes the mock cluster can inject, and the publisher classifies.
public struct KafkaErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// The raw `rd_kafka_resp_err_t` value.
    public let rawValue: Int32

    /// Creates a code from its raw value.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The broker timed out the request: retriable.
    public static let requestTimedOut = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue)
    /// Leadership moved: retriable (librdkafka retries it itself).
    public static let notLeaderForPartition = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue)
    /// Too few in-sync replicas: retriable.
    public static let notEnoughReplicas = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue)
    /// The message is larger than the broker accepts: permanent.
    public static let messageSizeTooLarge = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue)
    /// The broker rejected the record: permanent.
    public static let invalidRecord = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue)
    /// The producer may not write the topic: permanent until the ACL changes.
    public static let topicAuthorizationFailed = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue)
    /// An idempotence sequence gap: fatal, the producer must be rebuilt.
    public static let outOfOrderSequenceNumber = KafkaErrorCode(rawValue: RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER.rawValue)

    public var description: String { KafkaError.name(of: rd_kafka_resp_err_t(rawValue: rawValue)) }
}
