import CRdKafka
import Foundation

/// Owns one `rd_kafka_t`. librdkafka handles are thread-safe, so the pointer may be shared;
/// this object is its only owner and destroys it.
final class KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Kept alive as long as the handle, because librdkafka calls back into it.
    private let callbackOwner: AnyObject?

    enum Kind { case producer, consumer }

    /// Creates a client from properties; `configure` installs callbacks on the raw configuration.
    init(
        kind: Kind, properties: [String: String], callbackOwner: AnyObject? = nil,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws {
        guard let configuration = rd_kafka_conf_new() else {
            throw KafkaError(code: -1, operation: "configure", message: "librdkafka could not allocate a configuration.", isRetriable: false)
        }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(configuration, key, value, &errorText, errorText.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(configuration)
                // The value is not repeated: it may be a password (sasl.password, ssl.key.password).
                throw KafkaError(code: -1, operation: "configure",
                                 message: "The Kafka setting '\(key)' was refused: \(cText(errorText)).", isRetriable: false)
            }
        }
        configure(configuration)
        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        // On success rd_kafka_new takes ownership of the configuration; on failure we still own it.
        guard let handle = rd_kafka_new(type, configuration, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(configuration)
            throw KafkaError(code: -1, operation: "create client",
                             message: "Creating the Kafka client failed: \(cText(errorText)).", isRetriable: false)
        }
        pointer = handle
        self.callbackOwner = callbackOwner
    }

    /// Asks the cluster for metadata; `true` when a broker answered within `timeout`. Blocks: call off the cooperative pool.
    func brokerAnswers(timeout: Duration) -> Bool {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let result = rd_kafka_metadata(pointer, 0, nil, &metadata, Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        return result == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    deinit {
        rd_kafka_destroy(pointer)
    }
}

extension Duration {
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}

/// The text in a NUL-terminated buffer that librdkafka filled.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
