import CRabbitMQ
import Foundation
import Outbox

/// Exchanges and queues from the outside: declare, bind, delete, and read a queue back — what
/// tests, the benchmark and the chaos run need, and what an application can use to declare its
/// topology before the relay starts.
///
/// Blocking calls on a connection of its own: use it from a thread that may block, or briefly.
public final class AMQPAdmin: @unchecked Sendable {
    // @unchecked: every call takes the lock; rabbitmq-c connections are not thread-safe.
    private let lock = NSLock()
    private let state: amqp_connection_state_t

    /// One message read back from a queue.
    public struct ReceivedMessage: Sendable, Hashable {
        /// The AMQP `message_id` property.
        public var messageID: String?
        /// The routing key it was published with.
        public var routingKey: String
        /// The AMQP `type` property.
        public var type: String?
        /// The headers that are strings.
        public var headers: [String: String]
        /// The body.
        public var payload: [UInt8]
        /// Whether the broker delivered it before (to a consumer that did not acknowledge it).
        public var redelivered: Bool
    }

    /// Connects to `url` (`amqp://user:password@host:port/vhost`).
    ///
    /// - Throws: ``OutboxError`` naming what to fix.
    public init(url: String) throws {
        let configuration = AMQPPublisherConfiguration(url: url)
        let endpoint = try configuration.endpoint()
        guard let state = amqp_new_connection() else {
            throw OutboxError(code: .publisherUnavailable, operation: "connect", message: "Cannot create an AMQP connection.")
        }
        guard let socket = amqp_tcp_socket_new(state) else {
            amqp_destroy_connection(state)
            throw OutboxError(code: .publisherUnavailable, operation: "connect", message: "Cannot create an AMQP socket.")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        guard amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &timeout) == AMQP_STATUS_OK.rawValue else {
            amqp_destroy_connection(state)
            throw OutboxError(code: .publisherUnavailable, operation: "connect",
                              message: "No AMQP broker answered at \(configuration.redactedURL); check the URL and that RabbitMQ is up.", isRetriable: true)
        }
        self.state = state
        try check(outbox_amqp_login(state, endpoint.virtualHost, 0, endpoint.user, endpoint.password), "log in to \(configuration.redactedURL)")
        amqp_channel_open(state, 1)
        try check(amqp_get_rpc_reply(state), "open a channel")
    }

    deinit {
        amqp_channel_close(state, 1, Int32(AMQP_REPLY_SUCCESS))
        amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        amqp_destroy_connection(state)
    }

    private func check(_ reply: amqp_rpc_reply_t, _ what: String) throws {
        var text = [CChar](repeating: 0, count: 256)
        let code = outbox_amqp_reply_code(reply, &text, text.count)
        guard code != 0 else { return }
        throw OutboxError(code: .publisherUnavailable, operation: "AMQP admin", message: "Could not \(what): \(code) \(AMQPBytes.text(text)).")
    }

    /// Declares a durable exchange of `type` (direct, topic, fanout, headers).
    public func declareExchange(_ name: String, type: String = "direct") throws {
        lock.lock(); defer { lock.unlock() }
        AMQPBytes.with(name, type) { name, type in _ = amqp_exchange_declare(state, 1, name, type, 0, 1, 0, 0, amqp_empty_table) }
        try check(amqp_get_rpc_reply(state), "declare exchange \(name)")
    }

    /// Declares a durable queue and binds it to `exchange` with `bindingKey` (`#` takes every key
    /// of a topic exchange).
    public func declareQueue(_ name: String, boundTo exchange: String, bindingKey: String) throws {
        lock.lock(); defer { lock.unlock() }
        AMQPBytes.with(name) { name in _ = amqp_queue_declare(state, 1, name, 0, 1, 0, 0, amqp_empty_table) }
        try check(amqp_get_rpc_reply(state), "declare queue \(name)")
        AMQPBytes.with(name, exchange, bindingKey) { name, exchange, key in _ = amqp_queue_bind(state, 1, name, exchange, key, amqp_empty_table) }
        try check(amqp_get_rpc_reply(state), "bind queue \(name) to \(exchange)")
    }

    /// Deletes an exchange and a queue (either may be `nil`).
    public func delete(exchange: String?, queue: String?) throws {
        lock.lock(); defer { lock.unlock() }
        if let queue {
            AMQPBytes.with(queue) { queue in _ = amqp_queue_delete(state, 1, queue, 0, 0) }
            try check(amqp_get_rpc_reply(state), "delete queue \(queue)")
        }
        if let exchange {
            AMQPBytes.with(exchange) { exchange in _ = amqp_exchange_delete(state, 1, exchange, 0) }
            try check(amqp_get_rpc_reply(state), "delete exchange \(exchange)")
        }
    }

    /// Takes up to `limit` messages from `queue`, in queue order, acknowledging them.
    public func take(from queue: String, limit: Int = .max) throws -> [ReceivedMessage] {
        lock.lock(); defer { lock.unlock() }
        var messages: [ReceivedMessage] = []
        while messages.count < limit {
            let reply = AMQPBytes.with(queue) { queue in amqp_basic_get(state, 1, queue, 0) }
            try check(reply, "read queue \(queue)")
            guard reply.reply.id == AMQP_BASIC_GET_OK_METHOD, let getOK = reply.reply.decoded?.assumingMemoryBound(to: amqp_basic_get_ok_t.self) else {
                break  // basic.get-empty
            }
            let tag = getOK.pointee.delivery_tag
            let routingKey = Self.string(getOK.pointee.routing_key)
            let redelivered = getOK.pointee.redelivered != 0
            var message = amqp_message_t()
            try check(amqp_read_message(state, 1, &message, 0), "read a message of \(queue)")
            defer { amqp_destroy_message(&message) }
            let properties = message.properties
            var headers: [String: String] = [:]
            if properties._flags & UInt32(AMQP_BASIC_HEADERS_FLAG) != 0 {
                for index in 0..<Int(properties.headers.num_entries) {
                    let entry = properties.headers.entries[index]
                    if entry.value.kind == UInt8(AMQP_FIELD_KIND_UTF8.rawValue) || entry.value.kind == UInt8(AMQP_FIELD_KIND_BYTES.rawValue) {
                        headers[Self.string(entry.key)] = Self.string(entry.value.value.bytes)
                    }
                }
            }
            messages.append(ReceivedMessage(
                messageID: properties._flags & UInt32(AMQP_BASIC_MESSAGE_ID_FLAG) != 0 ? Self.string(properties.message_id) : nil,
                routingKey: routingKey,
                type: properties._flags & UInt32(AMQP_BASIC_TYPE_FLAG) != 0 ? Self.string(properties.type) : nil,
                headers: headers, payload: Self.bytes(message.body), redelivered: redelivered))
            amqp_basic_ack(state, 1, tag, 0)
        }
        return messages
    }

    private static func bytes(_ value: amqp_bytes_t) -> [UInt8] {
        guard value.len > 0, let pointer = value.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: value.len))
    }

    private static func string(_ value: amqp_bytes_t) -> String {
        String(decoding: bytes(value), as: UTF8.self)
    }
}
