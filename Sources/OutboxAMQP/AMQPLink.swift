import CRabbitMQ
import Foundation
import Logging
import Outbox
import Synchronization

/// The connection to RabbitMQ and the one thread that uses it.
///
/// rabbitmq-c's connections are not thread-safe, so one thread does all of it: connects (and
/// reconnects), sends what `publish` calls queue, and reads the broker's publisher confirms,
/// returns and closes. Channel 1 publishes in confirm mode; channel 2 checks that an exchange
/// exists (a passive declare) before the first message to it, so a missing exchange costs its own
/// messages an outage instead of closing the publishing channel under everyone's feet.
final class AMQPLink: @unchecked Sendable {
    // @unchecked: everything below `requests` is touched by the I/O thread only.
    typealias Sink = OutboxKeyOrderedBatch.Sink

    struct Request: Sendable {
        var exchange: String
        var routingKey: [UInt8]
        var messageID: String
        var type: String?
        var headers: [(String, String)]
        var payload: [UInt8]
        var sink: Sink
        var index: Int
    }

    private struct Pending {
        var sink: Sink
        var index: Int
        var messageID: String
        var exchange: String
        var sentAt: ContinuousClock.Instant
    }

    private let configuration: AMQPPublisherConfiguration
    private let endpoint: AMQPPublisherConfiguration.Endpoint
    private let logger: Logger
    private let requests = Mutex<[Request]>([])
    /// Unconfirmed messages, for the in-flight limit (read by `publish` calls).
    let inFlight = Atomic<Int>(0)
    /// Raised when messages are confirmed or fail: a `publish` waiting for room tries again.
    let progress = OutboxSignal()
    /// Raised when the connection is up (or failed for good at start).
    let connected = OutboxSignal()
    private let stopping = Atomic<Bool>(false)
    private let isConnected = Atomic<Bool>(false)
    private let wakeUp: (read: Int32, write: Int32)

    private var state: amqp_connection_state_t?
    private var nextTag: UInt64 = 1
    private var pending: [UInt64: Pending] = [:]
    private var returned: [String: String] = [:]
    private var checkedExchanges: [String: ContinuousClock.Instant] = [:]
    private var checkChannelOpen = false
    private var lastExpiryCheck = ContinuousClock.now

    init(configuration: AMQPPublisherConfiguration, logger: Logger) throws {
        self.configuration = configuration
        endpoint = try configuration.endpoint()
        self.logger = logger
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw OutboxError(code: .publisherUnavailable, operation: "start AMQP", message: "Cannot create the AMQP publisher's wake-up pipe.")
        }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        wakeUp = (fds[0], fds[1])
    }

    deinit {
        Glibc.close(wakeUp.read)
        Glibc.close(wakeUp.write)
    }

    var connectedNow: Bool { isConnected.load(ordering: .acquiring) }

    // MARK: - Called by publish

    /// Queues one message for the I/O thread.
    func enqueue(_ request: Request) {
        requests.withLock { $0.append(request) }
        inFlight.add(1, ordering: .relaxed)
        var byte: UInt8 = 1
        _ = write(wakeUp.write, &byte, 1)
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        var byte: UInt8 = 1
        _ = write(wakeUp.write, &byte, 1)
    }

    // MARK: - The I/O thread

    /// Runs until ``stop()``: connects, sends, reads confirms. Returns the first connection's
    /// failure if it never connected at all before `connectTimeout` (the caller's start-up check).
    func run(onFirstFailure: @escaping @Sendable (OutboxError) -> Void) {
        var backoff = Duration.milliseconds(250)
        var everConnected = false
        let started = ContinuousClock.now
        while !stopping.load(ordering: .acquiring) {
            if state == nil {
                do {
                    try connect()
                    everConnected = true
                    backoff = .milliseconds(250)
                    isConnected.store(true, ordering: .releasing)
                    connected.signal()
                    logger.info("AMQP publisher connected", metadata: ["amqp.url": "\(configuration.redactedURL)"])
                } catch let error as OutboxError {
                    failQueued(.unavailable(error.message))
                    if !everConnected && ContinuousClock.now - started >= configuration.connectTimeout {
                        onFirstFailure(error)
                        connected.signal()
                        return
                    }
                    if everConnected { logger.warning("AMQP connection failed; retrying", metadata: ["amqp.error": "\(error.message)"]) }
                    Thread.sleep(forTimeInterval: backoff.timeInterval)
                    backoff = min(backoff * 2, .seconds(2))
                    continue
                } catch {
                    continue
                }
            }
            for request in requests.withLock({ queued in defer { queued.removeAll() }; return queued }) {
                send(request)
            }
            guard state != nil else { continue }
            waitForFrames()
            readEvents()
            expireUnconfirmed()
            if let state { amqp_maybe_release_buffers(state) }
        }
        drop(.unavailable("the AMQP publisher stopped before the broker confirmed the message"))
        failQueued(.unavailable("the AMQP publisher stopped before the message was sent"))
    }

    /// Waits until the socket or the wake-up pipe has something, or a short while passed
    /// (heartbeats are serviced when frames are read).
    private func waitForFrames() {
        guard let state else { return }
        if amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0 { return }
        var fds = [pollfd(fd: amqp_get_sockfd(state), events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeUp.read, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 2, pending.isEmpty ? 1000 : 100)
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeUp.read, &buffer, buffer.count) > 0 {}
    }

    private func readEvents() {
        var event = outbox_amqp_event()
        while let state {
            outbox_amqp_next_event(state, 0, &event)
            switch Int(event.kind) {
            case Int(OUTBOX_AMQP_NOTHING.rawValue):
                return
            case Int(OUTBOX_AMQP_ACK.rawValue):
                confirm(upTo: event.delivery_tag, multiple: event.multiple != 0) { pending in
                    if let reason = self.returned.removeValue(forKey: pending.messageID) {
                        return .failed(reason, isRetriable: false)
                    }
                    return .delivered
                }
            case Int(OUTBOX_AMQP_NACK.rawValue):
                confirm(upTo: event.delivery_tag, multiple: event.multiple != 0) { _ in
                    .failed("RabbitMQ refused the message (basic.nack)", isRetriable: true)
                }
            case Int(OUTBOX_AMQP_RETURN.rawValue):
                let id = withUnsafeBytes(of: event.message_id) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                let text = withUnsafeBytes(of: event.text) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if let exchange = pending.values.first(where: { $0.messageID == id })?.exchange {
                    returned[id] = "No queue is bound to exchange \(exchange) for the message's routing key (\(event.reply_code) \(text))"
                } else {
                    returned[id] = "No queue took the message (\(event.reply_code) \(text))"
                }
            case Int(OUTBOX_AMQP_CHANNEL_CLOSED.rawValue), Int(OUTBOX_AMQP_CONNECTION_LOST.rawValue):
                let text = withUnsafeBytes(of: event.text) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                logger.warning("AMQP connection lost; reconnecting", metadata: ["amqp.reason": "\(event.reply_code) \(text)"])
                disconnect()
                drop(.unavailable("The AMQP connection broke before the broker confirmed the message (\(text))"))
                return
            default:
                continue
            }
        }
    }

    private func confirm(upTo tag: UInt64, multiple: Bool, _ outcome: (Pending) -> OutboxPublishOutcome) {
        let tags = multiple ? pending.keys.filter { $0 <= tag } : (pending[tag] == nil ? [] : [tag])
        for tag in tags.sorted() {
            guard let entry = pending.removeValue(forKey: tag) else { continue }
            entry.sink.yield((entry.index, outcome(entry)))
            inFlight.subtract(1, ordering: .relaxed)
        }
        if !tags.isEmpty { progress.signal() }
    }

    /// Unconfirmed messages older than the acknowledgement timeout are reported unavailable; a
    /// confirm that comes later finds nothing to complete. Looked for at most every 100 ms: the
    /// loop turns once per queued message under load, and the scan reads every pending entry.
    private func expireUnconfirmed() {
        guard ContinuousClock.now - lastExpiryCheck >= .milliseconds(100) else { return }
        lastExpiryCheck = .now
        let limit = ContinuousClock.now - configuration.acknowledgementTimeout
        let late = pending.filter { $0.value.sentAt < limit }
        guard !late.isEmpty else { return }
        for (tag, entry) in late.sorted(by: { $0.key < $1.key }) {
            pending[tag] = nil
            entry.sink.yield((entry.index, .unavailable("No publisher confirm within \(configuration.acknowledgementTimeout)")))
            inFlight.subtract(1, ordering: .relaxed)
        }
        progress.signal()
    }

    private func send(_ request: Request) {
        func answer(_ outcome: OutboxPublishOutcome) {
            request.sink.yield((request.index, outcome))
            inFlight.subtract(1, ordering: .relaxed)
            progress.signal()
        }
        guard let state else {
            answer(.unavailable("The AMQP connection is down"))
            return
        }
        if let problem = checkExchange(request.exchange, on: state) {
            answer(problem)
            return
        }
        let names = request.headers.map { UnsafePointer<CChar>?(strdup($0.0)) }
        let values = request.headers.map { UnsafePointer<CChar>?(strdup($0.1)) }
        defer { (names + values).forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        let status = names.withUnsafeBufferPointer { namePointers in
            values.withUnsafeBufferPointer { valuePointers in
                request.routingKey.withUnsafeBytes { key in
                    request.payload.withUnsafeBytes { body in
                        outbox_amqp_publish(state, 1, request.exchange, key.baseAddress, key.count, request.messageID, request.type,
                                            namePointers.baseAddress, valuePointers.baseAddress, Int32(request.headers.count),
                                            body.baseAddress, body.count)
                    }
                }
            }
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            let text = amqp_error_string2(status).map { String(cString: $0) } ?? "status \(status)"
            answer(.unavailable("The AMQP connection broke while sending (\(text))"))
            logger.warning("AMQP connection lost while sending; reconnecting", metadata: ["amqp.reason": "\(text)"])
            disconnect()
            drop(.unavailable("The AMQP connection broke before the broker confirmed the message (\(text))"))
            return
        }
        pending[nextTag] = Pending(sink: request.sink, index: request.index, messageID: request.messageID,
                                   exchange: request.exchange, sentAt: .now)
        nextTag += 1
    }

    /// Checks (a passive declare on channel 2, remembered for a minute) that `exchange` exists.
    private func checkExchange(_ exchange: String, on state: amqp_connection_state_t) -> OutboxPublishOutcome? {
        if let checked = checkedExchanges[exchange], ContinuousClock.now - checked < .seconds(60) { return nil }
        if !checkChannelOpen {
            amqp_channel_open(state, 2)
            var text = [CChar](repeating: 0, count: 256)
            guard outbox_amqp_reply_code(amqp_get_rpc_reply(state), &text, text.count) == 0 else {
                return .unavailable("RabbitMQ did not open a channel (\(AMQPBytes.text(text)))")
            }
            checkChannelOpen = true
        }
        AMQPBytes.with(exchange, "") { name, type in _ = amqp_exchange_declare(state, 2, name, type, 1, 0, 0, 0, amqp_empty_table) }
        var text = [CChar](repeating: 0, count: 256)
        let code = outbox_amqp_reply_code(amqp_get_rpc_reply(state), &text, text.count)
        if code == 0 {
            checkedExchanges[exchange] = .now
            return nil
        }
        let reason = AMQPBytes.text(text)
        if code == 1 || code == 2 {
            return .unavailable("The AMQP connection broke while checking exchange \(exchange) (\(reason))")
        }
        // The broker closed channel 2 to refuse the declare: answer, and open it again next time.
        outbox_amqp_close_ok(state, 2)
        checkChannelOpen = false
        if code == 404 { return .unavailable("Exchange \(exchange) does not exist on RabbitMQ") }
        if code == 403 { return .unavailable("The AMQP user may not use exchange \(exchange) (\(reason))") }
        return .failed("RabbitMQ refused exchange \(exchange) (\(code) \(reason))", isRetriable: false)
    }

    private func connect() throws {
        guard let connection = amqp_new_connection() else {
            throw OutboxError(code: .publisherUnavailable, operation: "connect", message: "Cannot create an AMQP connection.")
        }
        do {
            try open(connection)
            state = connection
            nextTag = 1
            checkChannelOpen = false
            checkedExchanges.removeAll()
        } catch {
            amqp_destroy_connection(connection)
            throw error
        }
    }

    private func open(_ connection: amqp_connection_state_t) throws {
        let redacted = configuration.redactedURL
        let socket: OpaquePointer?
        if endpoint.usesTLS {
            socket = amqp_ssl_socket_new(connection)
            if let socket {
                if let file = configuration.trustedCertificatesFile, amqp_ssl_socket_set_cacert(socket, file) != AMQP_STATUS_OK.rawValue {
                    throw OutboxError(code: .invalidConfiguration, operation: "connect", message: "Cannot load the trusted certificates \(file).")
                }
                if let certificate = configuration.clientCertificateFile, let key = configuration.clientKeyFile,
                   amqp_ssl_socket_set_key(socket, certificate, key) != AMQP_STATUS_OK.rawValue {
                    throw OutboxError(code: .invalidConfiguration, operation: "connect", message: "Cannot load the client certificate \(certificate) and its key.")
                }
                amqp_ssl_socket_set_verify_peer(socket, 1)
                amqp_ssl_socket_set_verify_hostname(socket, configuration.verifiesHostname ? 1 : 0)
            }
        } else {
            socket = amqp_tcp_socket_new(connection)
        }
        guard let socket else {
            throw OutboxError(code: .publisherUnavailable, operation: "connect", message: "Cannot create an AMQP socket.")
        }
        var timeout = timeval(tv_sec: Int(configuration.connectTimeout.components.seconds), tv_usec: 0)
        let opened = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &timeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            let text = amqp_error_string2(opened).map { String(cString: $0) } ?? "status \(opened)"
            throw OutboxError(code: .publisherUnavailable, operation: "connect",
                              message: "No AMQP broker answered at \(redacted) (\(text)); check the URL and that RabbitMQ is up.", isRetriable: true)
        }
        var text = [CChar](repeating: 0, count: 256)
        let login = outbox_amqp_reply_code(outbox_amqp_login(connection, endpoint.virtualHost, Int32(configuration.heartbeatSeconds),
                                                             endpoint.user, endpoint.password), &text, text.count)
        guard login == 0 else {
            if login == 1 && AMQPBytes.text(text).contains("login") || login == 403 {
                throw OutboxError(code: .invalidConfiguration, operation: "connect",
                                  message: "RabbitMQ at \(redacted) refused the login; check the user, password and virtual host.")
            }
            throw OutboxError(code: .publisherUnavailable, operation: "connect",
                              message: "RabbitMQ at \(redacted) did not accept the connection (\(AMQPBytes.text(text))).", isRetriable: true)
        }
        amqp_channel_open(connection, 1)
        guard outbox_amqp_reply_code(amqp_get_rpc_reply(connection), &text, text.count) == 0 else {
            throw OutboxError(code: .publisherUnavailable, operation: "connect", message: "RabbitMQ did not open a channel (\(AMQPBytes.text(text))).", isRetriable: true)
        }
        amqp_confirm_select(connection, 1)
        guard outbox_amqp_reply_code(amqp_get_rpc_reply(connection), &text, text.count) == 0 else {
            throw OutboxError(code: .publisherUnavailable, operation: "connect", message: "RabbitMQ refused publisher confirms (\(AMQPBytes.text(text))).", isRetriable: true)
        }
    }

    private func disconnect() {
        guard let state else { return }
        self.state = nil
        isConnected.store(false, ordering: .releasing)
        amqp_destroy_connection(state)
    }

    /// Completes every unconfirmed message with `outcome` (the connection is gone).
    private func drop(_ outcome: OutboxPublishOutcome) {
        for (_, entry) in pending.sorted(by: { $0.key < $1.key }) {
            entry.sink.yield((entry.index, outcome))
            inFlight.subtract(1, ordering: .relaxed)
        }
        pending.removeAll()
        returned.removeAll()
        progress.signal()
    }

    private func failQueued(_ outcome: OutboxPublishOutcome) {
        let queued = requests.withLock { queued in defer { queued.removeAll() }; return queued }
        for request in queued {
            request.sink.yield((request.index, outcome))
            inFlight.subtract(1, ordering: .relaxed)
        }
        if !queued.isEmpty { progress.signal() }
    }

    /// Closes the connection politely (the I/O thread has stopped).
    func close() {
        guard let state else { return }
        amqp_channel_close(state, 1, Int32(AMQP_REPLY_SUCCESS))
        amqp_connection_close(state, Int32(AMQP_REPLY_SUCCESS))
        disconnect()
    }
}
