import CRdKafka
import Outbox

/// Maps a delivery report (error code and persistence status) to the outbox's outcome.
enum KafkaDeliveryOutcome {
    /// Errors the broker will answer the same way next time. Everything else is retried.
    static let permanentErrors: Set<Int32> = [
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_MSG.rawValue,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue,
        RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION.rawValue,
        RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT.rawValue,
        RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue,
    ]

    /// Errors that say the broker could not be reached, not that the message is wrong: a delivery
    /// that timed out (`message.timeout.ms`), no broker or no leader for the partition. They are
    /// ``OutboxPublishOutcome/unavailable(_:)``, so a broker outage of any length uses up no
    /// attempts and walks no healthy message towards the dead-letter state.
    static let unavailableErrors: Set<Int32> = [
        RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE.rawValue,
        RD_KAFKA_RESP_ERR__TRANSPORT.rawValue,
        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue,
        RD_KAFKA_RESP_ERR__RESOLVE.rawValue,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue,
        RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE.rawValue,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION.rawValue,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND.rawValue,
    ]

    static func outcome(error: rd_kafka_resp_err_t, status: rd_kafka_msg_status_t) -> OutboxPublishOutcome {
        if error == RD_KAFKA_RESP_ERR_NO_ERROR { return .delivered }
        let name = KafkaError.name(of: error)
        let possiblyPersisted = status == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED
        if unavailableErrors.contains(error.rawValue) { return .unavailable("Kafka: \(name)") }
        if error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE {
            return .failed("Kafka: \(name): the message is larger than message.max.bytes; raise it on the producer (-X message.max.bytes=…) and on the broker and topic, or send smaller messages",
                           isRetriable: false, isPossiblyPersisted: possiblyPersisted)
        }
        return .failed("Kafka: \(name)", isRetriable: !permanentErrors.contains(error.rawValue), isPossiblyPersisted: possiblyPersisted)
    }
}
