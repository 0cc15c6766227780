/// A compact, binary-safe encoding of ordered headers, shared by the SQL stores.
///
/// Layout: for each header, the UTF-8 name and value, each preceded by its length as a 4-byte
/// big-endian integer. An empty list is zero bytes. Faster than JSON and needs no escaping.
public enum OutboxHeaderCoding {
    /// Encodes headers.
    public static func encode(_ headers: [OutboxHeader]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headers.reduce(0) { $0 + 8 + $1.name.utf8.count + $1.value.utf8.count })
        for header in headers {
            append(header.name, to: &bytes)
            append(header.value, to: &bytes)
        }
        return bytes
    }

    /// Decodes headers written by ``encode(_:)``.
    ///
    /// - Throws: ``OutboxError`` with code `.schemaMismatch` when the bytes are not such an encoding.
    public static func decode<Bytes: RandomAccessCollection>(_ bytes: Bytes) throws -> [OutboxHeader] where Bytes.Element == UInt8, Bytes.Index == Int {
        var headers: [OutboxHeader] = []
        var index = bytes.startIndex
        func string() throws -> String {
            guard bytes.endIndex - index >= 4 else { throw damaged }
            let length = bytes[index..<index + 4].reduce(0) { $0 << 8 | Int($1) }
            index += 4
            guard length >= 0, bytes.endIndex - index >= length else { throw damaged }
            defer { index += length }
            // Strict: bytes that are not UTF-8 mean the row was not written by this library.
            guard let text = String(validating: bytes[index..<index + length], as: UTF8.self) else { throw damaged }
            return text
        }
        while index < bytes.endIndex {
            let name = try string()
            let value = try string()
            headers.append(OutboxHeader(name, value))
        }
        return headers
    }

    /// Decodes the headers of a stored row without throwing: damaged bytes give no headers and a
    /// description of the damage, so the relay can dead-letter that one message instead of
    /// failing every claim that reads it.
    public static func decodeStored<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> (headers: [OutboxHeader], damage: String?)
    where Bytes.Element == UInt8, Bytes.Index == Int {
        do {
            return (try decode(bytes), nil)
        } catch {
            return ([], "The stored message's headers are damaged (\(bytes.count) bytes that are not an outbox header encoding of UTF-8 text); it was not published.")
        }
    }

    private static var damaged: OutboxError {
        OutboxError(code: .schemaMismatch, operation: "read headers",
                    message: "A stored message has damaged headers; the outbox table was written by something other than swift-outbox.")
    }

    private static func append(_ string: String, to bytes: inout [UInt8]) {
        let count = UInt32(string.utf8.count)
        bytes.append(contentsOf: [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)])
        bytes.append(contentsOf: string.utf8)
    }
}
