public import Foundation
import Synchronization

/// A publisher that writes each message as one JSON object per line, to standard output or a file.
///
/// A real, simple sink: the CLI and the demo work end to end without a broker, and another program
/// can follow the file. Each line holds `id`, `topic`, `key`, `type`, `headers` (ordered pairs),
/// `payload_base64` (byte-exact), `payload_text` (when the payload is UTF-8), `sequence`,
/// `created_at` and `published_at` (microseconds since 1970).
///
/// A batch is written with one `write` call and, for files, flushed to disk (`fsync`) before the
/// messages count as delivered.
public final class OutboxJSONLinesPublisher: OutboxPublisher, Sendable {
    private let handle: FileHandle
    private let synchronizes: Bool
    private let lock = Mutex(())
    /// Where the lines go, for messages.
    public let destination: String

    /// Writes to standard output.
    public init() {
        handle = .standardOutput
        synchronizes = false
        destination = "standard output"
    }

    /// Appends to the file at `path`, creating it if needed.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` when the file cannot be opened for writing.
    public init(path: String, synchronizes: Bool = true) throws {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) && !manager.createFile(atPath: path, contents: nil) {
            throw OutboxError(code: .invalidConfiguration, operation: "open output",
                              message: "Cannot create the output file \(path); check that its folder exists and is writable.")
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw OutboxError(code: .invalidConfiguration, operation: "open output",
                              message: "Cannot open the output file \(path) for writing; check its permissions.")
        }
        handle.seekToEndOfFile()
        self.handle = handle
        self.synchronizes = synchronizes
        destination = path
    }

    struct Line: Codable {
        var id: String
        var topic: String
        var key: String?
        var type: String?
        var headers: [[String]]
        var payloadBase64: String
        var payloadText: String?
        var sequence: Int64
        var createdAt: Int64
        var publishedAt: Int64
    }

    /// `file` in traces (OpenTelemetry's `messaging.system`).
    public var messagingSystem: String { "file" }

    public func publish(_ records: [OutboxRecord]) async throws -> [OutboxPublishOutcome] {
        try Task.checkCancellation()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let publishedAt = Int64(Date().timeIntervalSince1970 * 1_000_000)
        var data = Data()
        for record in records {
            let message = record.message
            let line = Line(
                id: OutboxUUIDText.string(message.id), topic: message.topic, key: message.key, type: message.type,
                headers: message.headers.map { [$0.name, $0.value] },
                payloadBase64: Data(message.payload).base64EncodedString(),
                payloadText: String(validating: message.payload, as: UTF8.self),
                sequence: record.sequence,
                createdAt: Int64(message.createdAt.timeIntervalSince1970 * 1_000_000),
                publishedAt: publishedAt)
            data.append(try encoder.encode(line))
            data.append(0x0A)
        }
        do {
            try lock.withLock { _ in
                try handle.write(contentsOf: data)
                if synchronizes { try handle.synchronize() }
            }
        } catch {
            throw OutboxError(code: .publisherUnavailable, operation: "publish",
                              message: "Writing to \(destination) failed (disk full or file closed).", isRetriable: true,
                              underlying: OutboxUnderlyingError(error))
        }
        return Array(repeating: .delivered, count: records.count)
    }
}

/// One line written by ``OutboxJSONLinesPublisher``, read back (by the demo and by tests).
public struct OutboxJSONLine: Sendable, Hashable {
    /// The message id.
    public var id: UUID
    /// The topic.
    public var topic: String
    /// The ordering key.
    public var key: String?
    /// The event type.
    public var type: String?
    /// Ordered headers.
    public var headers: [OutboxHeader]
    /// The payload, byte-exact.
    public var payload: [UInt8]
    /// The store sequence.
    public var sequence: Int64
    /// When the application created the message.
    public var createdAt: Date
    /// When the publisher wrote the line.
    public var publishedAt: Date

    /// Parses every line of a file written by ``OutboxJSONLinesPublisher``.
    ///
    /// - Throws: ``OutboxError`` with code `.invalidConfiguration` naming the first line that is not such a record.
    public static func read(contentsOf path: String) throws -> [OutboxJSONLine] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OutboxError(code: .invalidConfiguration, operation: "read output", message: "Cannot read \(path).")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var lines: [OutboxJSONLine] = []
        for (number, slice) in data.split(separator: 0x0A).enumerated() where !slice.isEmpty {
            guard let line = try? decoder.decode(OutboxJSONLinesPublisher.Line.self, from: Data(slice)),
                  let id = UUID(uuidString: line.id),
                  let payload = Data(base64Encoded: line.payloadBase64)
            else {
                throw OutboxError(code: .invalidConfiguration, operation: "read output",
                                  message: "Line \(number + 1) of \(path) is not an outbox JSON line.")
            }
            lines.append(OutboxJSONLine(
                id: id, topic: line.topic, key: line.key, type: line.type,
                headers: line.headers.compactMap { $0.count == 2 ? OutboxHeader($0[0], $0[1]) : nil },
                payload: [UInt8](payload), sequence: line.sequence,
                createdAt: Date(timeIntervalSince1970: TimeInterval(line.createdAt) / 1_000_000),
                publishedAt: Date(timeIntervalSince1970: TimeInterval(line.publishedAt) / 1_000_000)))
        }
        return lines
    }
}
