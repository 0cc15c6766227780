import CRabbitMQ

/// rabbitmq-c takes names as `amqp_bytes_t`, a pointer and a length that must stay valid for the
/// call: a Swift string's C form lives only inside `withCString`, so every name goes through here.
enum AMQPBytes {
    static func with<T>(_ text: String, _ body: (amqp_bytes_t) -> T) -> T {
        var utf8 = Array(text.utf8)
        return utf8.withUnsafeMutableBytes { buffer in body(amqp_bytes_t(len: buffer.count, bytes: buffer.baseAddress)) }
    }

    static func with<T>(_ first: String, _ second: String, _ body: (amqp_bytes_t, amqp_bytes_t) -> T) -> T {
        with(first) { one in with(second) { two in body(one, two) } }
    }

    static func with<T>(_ first: String, _ second: String, _ third: String, _ body: (amqp_bytes_t, amqp_bytes_t, amqp_bytes_t) -> T) -> T {
        with(first, second) { one, two in with(third) { three in body(one, two, three) } }
    }

    /// The text in a NUL-terminated buffer that rabbitmq-c filled.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
