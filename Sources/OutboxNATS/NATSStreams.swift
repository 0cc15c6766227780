import CNATS
import Foundation
import Outbox

/// JetStream streams from the outside: create one, delete one, read one back — what tests, the
/// benchmark and the chaos run need, and what an application can use to make sure its stream
/// exists before the relay starts.
///
/// Blocking calls of the C client: use it from a thread that may block, or briefly.
public final class NATSStreams: @unchecked Sendable {
    // @unchecked: the C client's connection and context are thread-safe; the pointers never change.
    private let connection: OpaquePointer
    private let jetStream: OpaquePointer

    /// One message read back from a stream.
    public struct StoredMessage: Sendable, Hashable {
        /// The stream sequence.
        public var sequence: UInt64
        /// The subject it was published to.
        public var subject: String
        /// The headers the publisher set (`outbox-id`, `outbox-key`, `outbox-type` and the
        /// message's own).
        public var headers: [String: String]
        /// The data.
        public var payload: [UInt8]
    }

    /// Connects to `servers` (`nats://host:port[,…]`).
    ///
    /// - Throws: ``OutboxError`` naming what to fix.
    public init(servers: String, timeout: Duration = .seconds(5)) throws {
        let redacted = NATSPublisherConfiguration(servers: servers).redactedServers
        var options: OpaquePointer?
        try NATSStatusText.check(natsOptions_Create(&options), doing: "create NATS options")
        defer { natsOptions_Destroy(options) }
        try NATSStatusText.check(natsOptions_SetURL(options, servers), doing: "use the NATS servers \(redacted)")
        natsOptions_SetTimeout(options, timeout.natsMilliseconds)
        var connection: OpaquePointer?
        let status = natsConnection_Connect(&connection, options)
        guard status == NATS_OK, let connection else { throw NATSStatusText.connectError(status, servers: redacted, timeout: timeout) }
        var jetStream: OpaquePointer?
        let contextStatus = natsConnection_JetStream(&jetStream, connection, nil)
        guard contextStatus == NATS_OK, let jetStream else {
            natsConnection_Destroy(connection)
            throw OutboxError(code: .publisherUnavailable, operation: "connect", message: "NATS at \(redacted) has no JetStream (\(NATSStatusText.text(contextStatus))).")
        }
        self.connection = connection
        self.jetStream = jetStream
    }

    deinit {
        natsConnection_Close(connection)
        jsCtx_Destroy(jetStream)
        natsConnection_Destroy(connection)
    }

    /// Creates a file-backed stream storing `subjects` (or updates the one of that name).
    ///
    /// - Parameters:
    ///   - maximumMessageBytes: the largest message the stream stores; `nil`: the server's limit.
    ///   - duplicateWindow: how long the stream remembers `Nats-Msg-Id`s to drop duplicates.
    public func createStream(_ name: String, subjects: [String], maximumMessageBytes: Int32? = nil,
                             duplicateWindow: Duration = .seconds(120)) throws {
        var configuration = jsStreamConfig()
        jsStreamConfig_Init(&configuration)
        let cName = strdup(name)
        defer { free(cName) }
        var cSubjects = subjects.map { UnsafePointer<CChar>?(strdup($0)) }
        defer { cSubjects.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        configuration.Name = UnsafePointer(cName)
        configuration.Storage = js_FileStorage
        configuration.Duplicates = duplicateWindow.natsMilliseconds * 1_000_000  // nanoseconds
        if let maximumMessageBytes { configuration.MaxMsgSize = maximumMessageBytes }
        var errorCode = jsErrCode(rawValue: 0)
        var info: UnsafeMutablePointer<jsStreamInfo>?
        let status = cSubjects.withUnsafeMutableBufferPointer { list -> natsStatus in
            configuration.Subjects = list.baseAddress
            configuration.SubjectsLen = Int32(list.count)
            return js_AddStream(&info, jetStream, &configuration, nil, &errorCode)
        }
        jsStreamInfo_Destroy(info)
        guard status == NATS_OK else {
            throw OutboxError(code: .publisherUnavailable, operation: "create stream",
                              message: "NATS could not create stream \(name) (\(NATSStatusText.text(status)), error \(errorCode.rawValue)).")
        }
    }

    /// Deletes a stream and what it stores; does nothing if there is none.
    public func deleteStream(_ name: String) throws {
        var errorCode = jsErrCode(rawValue: 0)
        let status = js_DeleteStream(jetStream, name, nil, &errorCode)
        guard status == NATS_OK || errorCode.rawValue == 10059 || status == NATS_NOT_FOUND else {
            throw OutboxError(code: .publisherUnavailable, operation: "delete stream",
                              message: "NATS could not delete stream \(name) (\(NATSStatusText.text(status)), error \(errorCode.rawValue)).")
        }
    }

    /// The stream's first and last sequence and message count.
    public func state(of stream: String) throws -> (first: UInt64, last: UInt64, messages: UInt64) {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var errorCode = jsErrCode(rawValue: 0)
        let status = js_GetStreamInfo(&info, jetStream, stream, nil, &errorCode)
        defer { jsStreamInfo_Destroy(info) }
        guard status == NATS_OK, let info else {
            throw OutboxError(code: .publisherUnavailable, operation: "read stream",
                              message: "NATS could not describe stream \(stream) (\(NATSStatusText.text(status)), error \(errorCode.rawValue)).")
        }
        return (info.pointee.State.FirstSeq, info.pointee.State.LastSeq, info.pointee.State.Msgs)
    }

    /// Reads the stream's messages from `sequence` on, at most `limit`, in stream order.
    public func read(_ stream: String, from sequence: UInt64 = 1, limit: Int = .max) throws -> [StoredMessage] {
        let state = try state(of: stream)
        var messages: [StoredMessage] = []
        var next = max(sequence, state.first)
        while next <= state.last && messages.count < limit {
            defer { next += 1 }
            var message: OpaquePointer?
            var errorCode = jsErrCode(rawValue: 0)
            let status = js_GetMsg(&message, jetStream, stream, next, nil, &errorCode)
            defer { natsMsg_Destroy(message) }
            if status == NATS_NOT_FOUND || errorCode.rawValue == 10037 { continue }  // deleted
            guard status == NATS_OK, let message else {
                throw OutboxError(code: .publisherUnavailable, operation: "read stream",
                                  message: "NATS could not read message \(next) of \(stream) (\(NATSStatusText.text(status)), error \(errorCode.rawValue)).")
            }
            messages.append(StoredMessage(sequence: next, subject: String(cString: natsMsg_GetSubject(message)),
                                          headers: Self.headers(of: message), payload: Self.payload(of: message)))
        }
        return messages
    }

    private static func payload(of message: OpaquePointer) -> [UInt8] {
        let count = Int(natsMsg_GetDataLength(message))
        guard count > 0, let data = natsMsg_GetData(message) else { return [] }
        return data.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    private static func headers(of message: OpaquePointer) -> [String: String] {
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        guard natsMsgHeader_Keys(message, &keys, &count) == NATS_OK, let keys else { return [:] }
        defer { free(keys) }
        var headers: [String: String] = [:]
        for index in 0..<Int(count) {
            guard let key = keys[index] else { continue }
            var value: UnsafePointer<CChar>?
            if natsMsgHeader_Get(message, key, &value) == NATS_OK, let value {
                headers[String(cString: key)] = String(cString: value)
            }
        }
        return headers
    }
}
