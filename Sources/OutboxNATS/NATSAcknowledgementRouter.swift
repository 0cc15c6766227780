import CNATS
import Foundation
import Outbox
import Synchronization

/// Sends messages to JetStream and routes each acknowledgement back to the batch slot of its
/// message.
///
/// The C client hands the acknowledgement handler the very message object that was published, so
/// its address is the key; the entry is removed before the object is freed, so an address reused
/// by a later message never meets a stale entry.
final class NATSAcknowledgementRouter: Sendable {
    typealias Sink = OutboxKeyOrderedBatch.Sink

    private let pending = Mutex<[Int: (sink: Sink, index: Int, subject: String)]>([:])
    /// Raised at every acknowledgement: a publisher waiting for room tries again.
    let progress = OutboxSignal()
    let acknowledgementTimeout: Duration

    init(acknowledgementTimeout: Duration) {
        self.acknowledgementTimeout = acknowledgementTimeout
    }

    var pendingCount: Int { pending.withLock { $0.count } }

    /// Waits until fewer than `limit` messages are unacknowledged.
    func waitForRoom(limit: Int) async throws {
        while true {
            let generation = progress.generation
            if pendingCount < limit { return }
            await progress.wait(since: generation, timeout: .milliseconds(100))
            try Task.checkCancellation()
        }
    }

    /// Waits until nothing is unacknowledged; `false` if `timeout` passed first.
    func waitUntilIdle(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let generation = progress.generation
            if pendingCount == 0 { return true }
            await progress.wait(since: generation, timeout: .milliseconds(100))
        }
        return pendingCount == 0
    }

    /// Sends one message; returns its outcome when it could not be sent (the acknowledgement
    /// handler answers for the others, through `sink`).
    func send(_ record: OutboxRecord, subject: String, sink: Sink, index: Int,
              on connection: NATSConnection) -> OutboxPublishOutcome? {
        let message = record.message
        if let problem = NATSWireChecks.subjectProblem(subject) {
            return .failed(problem, isRetriable: false)
        }
        var headers = message.headers.map { ($0.name, $0.value) }
        let id = OutboxUUIDText.string(message.id)
        headers.append(("Nats-Msg-Id", id))
        headers.append(("outbox-id", id))
        if let type = message.type { headers.append(("outbox-type", type)) }
        if let key = message.key { headers.append(("outbox-key", key)) }
        if let problem = NATSWireChecks.headerProblem(headers) {
            return .failed(problem, isRetriable: false)
        }

        var created: OpaquePointer?
        let status = message.payload.withUnsafeBytes { payload in
            // The client copies the data.
            natsMsg_Create(&created, subject, nil, payload.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(clamping: payload.count))
        }
        guard status == NATS_OK, let natsMessage = created else {
            return NATSStatusText.sendOutcome(status, maximumPayload: connection.maximumPayload)
        }
        // Headers with an empty value are left out: the C client reads the line after an empty
        // (or blank) value as its value, so one would corrupt the next header for such readers.
        // An empty key therefore arrives as no `outbox-key`, like no key.
        for (name, value) in headers where !value.isEmpty {
            let added = natsMsgHeader_Add(natsMessage, name, value)
            guard added == NATS_OK else {
                natsMsg_Destroy(natsMessage)
                return .failed("The NATS client refused header \(name) (\(NATSStatusText.text(added)))", isRetriable: false)
            }
        }

        let address = Int(bitPattern: natsMessage)
        pending.withLock { $0[address] = (sink, index, subject) }
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = acknowledgementTimeout.natsMilliseconds
        var owned: OpaquePointer? = natsMessage
        let sent = js_PublishMsgAsync(connection.jetStream, &owned, &options)
        // The client took the message when it cleared the pointer; then its acknowledgement (or
        // its time-out) arrives through the handler, even if the call reported an error.
        guard sent != NATS_OK, let notTaken = owned else { return nil }
        pending.withLock { _ = $0.removeValue(forKey: address) }
        natsMsg_Destroy(notTaken)
        return NATSStatusText.sendOutcome(sent, maximumPayload: connection.maximumPayload)
    }

    /// The acknowledgement handler's work: complete the message's slot. Frees the message.
    func acknowledge(_ message: OpaquePointer?, acknowledgement: UnsafeMutablePointer<jsPubAck>?,
                     failure: UnsafeMutablePointer<jsPubAckErr>?) {
        guard let message else { return }
        let slot = pending.withLock { $0.removeValue(forKey: Int(bitPattern: message)) }
        natsMsg_Destroy(message)
        defer { progress.signal() }
        guard let slot else { return }
        let outcome: OutboxPublishOutcome
        if acknowledgement != nil {
            outcome = .delivered
        } else if let failure {
            outcome = NATSStatusText.acknowledgementOutcome(
                status: failure.pointee.Err, code: Int(failure.pointee.ErrCode.rawValue),
                serverText: failure.pointee.ErrText.map { String(cString: $0) }, subject: slot.subject,
                timeout: acknowledgementTimeout)
        } else {
            outcome = .failed("JetStream answered neither an acknowledgement nor an error", isRetriable: true)
        }
        slot.sink.yield((slot.index, outcome))
    }

    /// Completes every message still waiting (the connection is gone).
    func failAllPending(_ outcome: OutboxPublishOutcome) {
        let all = pending.withLock { pending in
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for slot in all { slot.sink.yield((slot.index, outcome)) }
        progress.signal()
    }
}

/// What NATS cannot carry, found before anything is sent.
enum NATSWireChecks {
    /// Why `subject` is not a subject a message can be published to, or `nil`.
    static func subjectProblem(_ subject: String) -> String? {
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        if subject.isEmpty || tokens.contains(where: \.isEmpty) {
            return "The topic does not make a NATS subject (empty, or an empty token between dots)"
        }
        if subject.contains(where: { $0.isWhitespace || $0.isNewline }) || tokens.contains(where: { $0 == "*" || $0 == ">" }) {
            return "The topic does not make a NATS subject (spaces and the wildcards * and > are not allowed)"
        }
        return nil
    }

    /// Why the headers cannot be sent as NATS headers, or `nil`. A line break would end the
    /// header block early (a header injection); a colon or space would split a name.
    static func headerProblem(_ headers: [(String, String)]) -> String? {
        for (name, value) in headers {
            if name.isEmpty || name.contains(where: { $0 == ":" || $0.isWhitespace || $0.isNewline || !$0.isASCII }) {
                return "Header name \(name.debugDescription) cannot be carried by NATS (empty, or a colon, space, line break or non-ASCII character)"
            }
            if value.contains(where: \.isNewline) {
                return "The value of header \(name) (or the key, carried as outbox-key) contains a line break, which NATS headers cannot carry"
            }
        }
        return nil
    }
}
