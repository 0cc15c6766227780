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

    static func outcome(error: rd_kafka_resp_err_t, status: rd_kafka_msg_status_t) -> OutboxPublishOutcome {
        if error == RD_KAFKA_RESP_ERR_NO_ERROR { return .delivered }
        let name = KafkaError.name(of: error)
        let possiblyPersisted = status == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED
        return .failed("Kafka: \(name)", isRetriable: !permanentErrors.contains(error.rawValue), isPossiblyPersisted: possiblyPersisted)
    }
}
